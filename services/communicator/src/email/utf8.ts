/** Whether `bytes` are well-formed UTF-8 (the WHATWG decoder in fatal mode: no replacement characters needed). */
export function validUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

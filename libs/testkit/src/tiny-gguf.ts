/**
 * A tiny GGUF model written from code, for tests of the `local` LLM provider without any download: GGUF v3
 * (magic `GGUF`, little-endian, tensor data aligned to 32 bytes), architecture `llama` (2 blocks, embedding 32,
 * 4 heads, feed-forward 64), every tensor F32, and a byte-level SentencePiece vocabulary: `<unk>` `<s>` `</s>`,
 * the 256 byte tokens `<0x00>`…`<0xFF>` (token type BYTE) and the ChatML control tokens `<|im_start|>`
 * `<|im_end|>` (the end-of-generation token), plus `▁` (U+2581, SentencePiece's space). About 170 KB.
 *
 * The weights are fixed pseudo-random numbers (a seeded xorshift), so every run writes the same bytes. On top of
 * the noise each token embedding carries a constant first component and the blocks' output projections are small,
 * so the final hidden state points along that component and the logits are, to first order, `bias[token]`: the
 * model's preferences are set per byte. `style: 'terse'` prefers closing quotes and braces (constrained JSON
 * generation ends after a few tokens); `style: 'endless'` never prefers a quote (a string runs on until the token
 * limit: for deadline tests).
 *
 * Layout rules from the GGUF specification (ggml `docs/gguf.md`) and llama.cpp's loader: key/value types
 * (uint32 = 4, float32 = 6, string = 8, array = 9), tensor dimensions innermost first (`token_embd.weight` is
 * [n_embd, n_vocab]), offsets relative to the aligned start of the data section.
 */
import { writeFileSync } from 'node:fs';

export type TinyGgufStyle = 'terse' | 'endless';

export type TinyGgufOptions = {
  style?: TinyGgufStyle;
  /** `general.name` (shown in logs). */
  name?: string;
  /** Seed of the pseudo-random weights. */
  seed?: number;
};

const N_EMBD = 32;
const N_HEAD = 4;
const N_FF = 64;
const N_LAYER = 2;
const CONTEXT_LENGTH = 32_768;
const ALIGNMENT = 32;

const T_UINT32 = 4;
const T_INT32 = 5;
const T_FLOAT32 = 6;
const T_BOOL = 7;
const T_STRING = 8;
const T_ARRAY = 9;
const GGML_F32 = 0;

// llama.cpp token types.
const TOKEN_NORMAL = 1;
const TOKEN_UNKNOWN = 2;
const TOKEN_CONTROL = 3;
const TOKEN_BYTE = 6;

type Value =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'str'; value: string }
  | { type: 'arr-str'; value: string[] }
  | { type: 'arr-f32'; value: number[] }
  | { type: 'arr-i32'; value: number[] };

class Writer {
  private chunks: Buffer[] = [];
  length = 0;
  private push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    this.push(b);
  }
  i32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    this.push(b);
  }
  u64(n: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    this.push(b);
  }
  f32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(n);
    this.push(b);
  }
  str(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  bytes(b: Buffer): void {
    this.push(b);
  }
  pad(): void {
    const rest = this.length % ALIGNMENT;
    if (rest) this.push(Buffer.alloc(ALIGNMENT - rest));
  }
  buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function writeValue(w: Writer, v: Value): void {
  switch (v.type) {
    case 'u32':
      w.u32(T_UINT32);
      w.u32(v.value);
      return;
    case 'i32':
      w.u32(T_INT32);
      w.i32(v.value);
      return;
    case 'f32':
      w.u32(T_FLOAT32);
      w.f32(v.value);
      return;
    case 'bool':
      w.u32(T_BOOL);
      w.bytes(Buffer.from([v.value ? 1 : 0]));
      return;
    case 'str':
      w.u32(T_STRING);
      w.str(v.value);
      return;
    case 'arr-str':
      w.u32(T_ARRAY);
      w.u32(T_STRING);
      w.u64(v.value.length);
      for (const s of v.value) w.str(s);
      return;
    case 'arr-f32':
      w.u32(T_ARRAY);
      w.u32(T_FLOAT32);
      w.u64(v.value.length);
      for (const n of v.value) w.f32(n);
      return;
    case 'arr-i32':
      w.u32(T_ARRAY);
      w.u32(T_INT32);
      w.u64(v.value.length);
      for (const n of v.value) w.i32(n);
      return;
  }
}

/** xorshift32 → uniform numbers in [-1, 1). */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x80000000 - 1;
  };
}

const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The per-token preference (logit, to first order) of the tiny model. */
function tokenBias(tokens: string[], style: TinyGgufStyle): number[] {
  return tokens.map((t) => {
    const m = /^<0x([0-9A-F]{2})>$/.exec(t);
    if (t === '\u2581') return -5;
    if (!m) return t === '<|im_end|>' ? 2 : -4;
    const ch = String.fromCharCode(parseInt(m[1]!, 16));
    if (ch === '"') return style === 'terse' ? 3 : -4;
    if (ch === '}' || ch === ']') return style === 'terse' ? 2.5 : -3;
    if (ch === 'a' || ch === 'o') return 1.5; // a string's first letter
    if (/[a-z]/.test(ch)) return 1;
    if (/[A-Z0-9]/.test(ch)) return 0.5;
    if (/\s/.test(ch)) return -5; // no runaway whitespace between JSON tokens
    return -1;
  });
}

/** The bytes of the tiny model (see the module comment). */
export function tinyGguf(opts: TinyGgufOptions = {}): Buffer {
  const style = opts.style ?? 'terse';
  const rand = prng(opts.seed ?? 20_260_101);
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL];
  for (let b = 0; b < 256; b += 1) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_BYTE);
  }
  // SentencePiece writes spaces as U+2581; a token for it makes spaces round-trip (bytes would keep the U+2581).
  tokens.push('\u2581');
  types.push(TOKEN_NORMAL);
  tokens.push('<|im_start|>', '<|im_end|>');
  types.push(TOKEN_CONTROL, TOKEN_CONTROL);
  const nVocab = tokens.length;
  const imEnd = nVocab - 1;

  const metadata: [string, Value][] = [
    ['general.architecture', { type: 'str', value: 'llama' }],
    ['general.name', { type: 'str', value: opts.name ?? `workemon-tiny-${style}` }],
    ['general.alignment', { type: 'u32', value: ALIGNMENT }],
    ['general.file_type', { type: 'u32', value: 0 }], // all F32
    ['llama.context_length', { type: 'u32', value: CONTEXT_LENGTH }],
    ['llama.embedding_length', { type: 'u32', value: N_EMBD }],
    ['llama.block_count', { type: 'u32', value: N_LAYER }],
    ['llama.feed_forward_length', { type: 'u32', value: N_FF }],
    ['llama.rope.dimension_count', { type: 'u32', value: N_EMBD / N_HEAD }],
    ['llama.attention.head_count', { type: 'u32', value: N_HEAD }],
    ['llama.attention.head_count_kv', { type: 'u32', value: N_HEAD }],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-5 }],
    ['llama.rope.freq_base', { type: 'f32', value: 10_000 }],
    ['llama.vocab_size', { type: 'u32', value: nVocab }],
    ['tokenizer.ggml.model', { type: 'str', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'arr-str', value: tokens }],
    ['tokenizer.ggml.scores', { type: 'arr-f32', value: tokens.map(() => 0) }],
    ['tokenizer.ggml.token_type', { type: 'arr-i32', value: types }],
    ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: 0 }],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: 1 }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: imEnd }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
    ['tokenizer.ggml.add_space_prefix', { type: 'bool', value: false }],
    ['tokenizer.chat_template', { type: 'str', value: CHATML_TEMPLATE }],
  ];

  const bias = tokenBias(tokens, style);
  const noise = (n: number, scale: number) => Array.from({ length: n }, () => rand() * scale);
  const tensors: { name: string; dims: number[]; data: number[] }[] = [];
  // Embeddings: a constant first component (the direction the logits read) plus noise.
  const embd: number[] = [];
  for (let t = 0; t < nVocab; t += 1) embd.push(4, ...noise(N_EMBD - 1, 0.05));
  tensors.push({ name: 'token_embd.weight', dims: [N_EMBD, nVocab], data: embd });
  for (let l = 0; l < N_LAYER; l += 1) {
    const p = `blk.${l}`;
    tensors.push({ name: `${p}.attn_norm.weight`, dims: [N_EMBD], data: Array(N_EMBD).fill(1) });
    for (const m of ['attn_q', 'attn_k', 'attn_v']) {
      tensors.push({ name: `${p}.${m}.weight`, dims: [N_EMBD, N_EMBD], data: noise(N_EMBD * N_EMBD, 0.3) });
    }
    tensors.push({ name: `${p}.attn_output.weight`, dims: [N_EMBD, N_EMBD], data: noise(N_EMBD * N_EMBD, 0.02) });
    tensors.push({ name: `${p}.ffn_norm.weight`, dims: [N_EMBD], data: Array(N_EMBD).fill(1) });
    tensors.push({ name: `${p}.ffn_gate.weight`, dims: [N_EMBD, N_FF], data: noise(N_EMBD * N_FF, 0.3) });
    tensors.push({ name: `${p}.ffn_up.weight`, dims: [N_EMBD, N_FF], data: noise(N_EMBD * N_FF, 0.3) });
    tensors.push({ name: `${p}.ffn_down.weight`, dims: [N_FF, N_EMBD], data: noise(N_FF * N_EMBD, 0.02) });
  }
  tensors.push({ name: 'output_norm.weight', dims: [N_EMBD], data: Array(N_EMBD).fill(1) });
  // Output rows: the token's bias on the constant direction (normalized hidden state ≈ √n_embd there).
  const out: number[] = [];
  for (let t = 0; t < nVocab; t += 1) out.push(bias[t]! / Math.sqrt(N_EMBD), ...noise(N_EMBD - 1, 0.01));
  tensors.push({ name: 'output.weight', dims: [N_EMBD, nVocab], data: out });

  const w = new Writer();
  w.u32(0x46554747); // "GGUF"
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [key, value] of metadata) {
    w.str(key);
    writeValue(w, value);
  }
  let offset = 0;
  const blobs: Buffer[] = [];
  for (const t of tensors) {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_F32);
    w.u64(offset);
    const blob = Buffer.alloc(Math.ceil((t.data.length * 4) / ALIGNMENT) * ALIGNMENT);
    t.data.forEach((x, i) => blob.writeFloatLE(x, i * 4));
    blobs.push(blob);
    offset += blob.length;
  }
  w.pad();
  for (const b of blobs) w.bytes(b);
  return w.buffer();
}

/** Writes the tiny model to `path` and returns the path. */
export function writeTinyGguf(path: string, opts: TinyGgufOptions = {}): string {
  writeFileSync(path, tinyGguf(opts));
  return path;
}

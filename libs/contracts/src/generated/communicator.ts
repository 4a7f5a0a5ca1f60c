/* eslint-disable */
// Generated from openapi/communicator.yaml by `npm run generate -w libs/contracts`. Do not edit.
export interface paths {
    "/send": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Deliver a message on a channel */
        post: operations["send"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/test": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Dry run of the mail pipeline (nothing is sent, no budget taken)
         * @description Runs one mail through the email pipeline up to the decision: parse, loop rules (RFC 3834), the duplicate
         *     check, sender trust and the secretary's decision asked with `dry_run: true` (no action runs, no outbox row).
         *     Nothing is sent by SMTP, no IMAP flag is set, no rate-limit budget is taken; the audit log gets one event
         *     marked `dry_run: true`. Body: a raw RFC 5322 mail (`message/rfc822`, up to MAX_MAIL_BYTES) or JSON
         *     `{from, subject, text}`. A JSON mail carries no Authentication-Results, so its sender counts as unverified.
         *     Needs a client or an admin key (API_KEYS / ADMIN_API_KEYS); 501 when the email channel is not configured.
         */
        post: operations["testMail"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/health": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness and dependency checks */
        get: operations["getHealth"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        SendRequest: {
            /** @enum {string} */
            channel: "email" | "tg";
            /** @description an email address, or a Telegram chat id or @username */
            to: string;
            text: string;
            subject?: string;
            /** @description Message-ID of the mail this answers */
            in_reply_to?: string;
            /** @description a repeat with the same key is not delivered twice */
            idempotency_key?: string;
            /** @description channel tg only: inline buttons shown in one row under the message. A press whose callback_data is `action:approve:<id>` or `action:reject:<id>` from APPROVER_TELEGRAM_CHAT_ID approves or rejects that action execution on the secretary. */
            buttons?: components["schemas"]["SendButton"][];
        };
        TestMailRequest: {
            /** @description the sender (an address, optionally with a display name) */
            from: string;
            subject?: string;
            text: string;
            /** @description Message-ID, with angle brackets; default: a new one */
            message_id?: string;
            /** @description Message-ID of the mail this one answers (a thread) */
            in_reply_to?: string;
        };
        DryRunVerdict: {
            /** @enum {boolean} */
            dry_run: true;
            /** @enum {string} */
            outcome: "skipped" | "decided";
            /**
             * @description skipped: automatic | duplicate | unreadable | no-reply (the audit log's reasons); decided: unreadable
             *     (our own request for text would be sent) or refused (the secretary refused; a standard message would be sent)
             */
            reason?: string;
            /** @description the finer rule */
            detail?: string;
            /** @description the mail's Message-ID */
            message_id?: string;
            /** @description the secretary's answer to /analyze-request with dry_run true (AnalysisResponse with dry_run and would_execute) */
            decision?: {
                [key: string]: unknown;
            };
            /** @description the reply that would be sent */
            reply?: {
                to: string;
                subject: string;
                in_reply_to?: string;
                text: string;
            };
        };
        SendButton: {
            text: string;
            /** @description at most 64 bytes (Telegram's limit) */
            callback_data: string;
        };
        SendResponse: {
            delivered: boolean;
            /** @enum {string} */
            channel: "email" | "tg";
            /** @description the id the channel gave the message */
            message_id?: string;
            /** @description true when the idempotency key was seen before and nothing was sent */
            duplicate?: boolean;
        };
        ErrorResponse: {
            /** @example Bad Request */
            error: string;
            /** @example Parameter 'request' is required */
            message: string;
            /** @example 400 */
            statusCode: number;
        };
        Health: {
            /** @enum {string} */
            status: "ok" | "degraded" | "down";
            service: string;
            version: string;
            uptime_s: number;
            checks: {
                [key: string]: {
                    /** @enum {string} */
                    status: "ok" | "degraded" | "down" | "disabled";
                    latency_ms: number;
                    detail?: string;
                };
            };
        };
    };
    responses: {
        /** @description an error in the contract's shape */
        Error: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["ErrorResponse"];
            };
        };
        /** @description health of the service and its dependencies */
        Health: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Health"];
            };
        };
    };
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    send: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SendRequest"];
            };
        };
        responses: {
            /** @description delivered */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SendResponse"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            413: components["responses"]["Error"];
            429: components["responses"]["Error"];
            500: components["responses"]["Error"];
            /** @description the channel is not configured in this deployment (stable; not worth retrying) */
            501: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            502: components["responses"]["Error"];
            503: components["responses"]["Error"];
            504: components["responses"]["Error"];
        };
    };
    testMail: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "from": "ivan@client.example",
                 *       "subject": "Доступ к VPN",
                 *       "text": "Здравствуйте! Нужен доступ к VPN для удалённой работы."
                 *     }
                 */
                "application/json": components["schemas"]["TestMailRequest"];
                /**
                 * @example From: ivan@client.example
                 *     To: bot@corp.example
                 *     Subject: VPN
                 *     Message-ID: <q1@client.example>
                 *
                 *     Нужен доступ к VPN.
                 */
                "message/rfc822": string;
            };
        };
        responses: {
            /** @description the verdict */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DryRunVerdict"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            413: components["responses"]["Error"];
            415: components["responses"]["Error"];
            429: components["responses"]["Error"];
            500: components["responses"]["Error"];
            /** @description the email channel is not configured in this deployment */
            501: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            502: components["responses"]["Error"];
            503: components["responses"]["Error"];
            504: components["responses"]["Error"];
        };
    };
    getHealth: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: components["responses"]["Health"];
            503: components["responses"]["Health"];
        };
    };
}

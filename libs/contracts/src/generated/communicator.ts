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
         * Dry run of the mail pipeline (nothing is sent, no sender's budget taken)
         * @description Runs one mail through the email pipeline up to the decision: parse, loop rules (RFC 3834), the duplicate
         *     check, sender trust and the secretary's decision asked with `dry_run: true` (no action runs, no outbox row).
         *     Nothing is sent by SMTP, no IMAP flag is set, no sender's rate-limit budget is taken; the audit log gets one
         *     event marked `dry_run: true`. A mail that reaches the secretary's decision calls the models, so it takes one
         *     unit of the caller key's TEST_RATE_LIMIT_PER_KEY_PER_MINUTE (429 with Retry-After beyond it, before the
         *     secretary is asked). Body: a raw RFC 5322 mail (`message/rfc822`, up to MAX_MAIL_BYTES) or JSON
         *     `{from, subject, text}`. A JSON mail carries no Authentication-Results, so its sender counts as unverified.
         *     Needs a client or an admin key (API_KEYS / ADMIN_API_KEYS); 501 when the email channel is not configured.
         *     An admin key sees the whole pass. A client key sees what the secretary shows a client key and nothing of the
         *     mailbox's history: `decision.would_execute` in the client's view (the kind of target, no rules, no
         *     operator's reason), the Message-ID treated as never answered (never `duplicate`), and the mail's own
         *     Authentication-Results not believed (its sender counts as unverified).
         */
        post: operations["testMail"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/webhook/mailgun": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Inbound mail from a Mailgun route (forward() to this URL)
         * @description Mailgun's inbound route POST, parsed fields or raw MIME (`body-mime`, when the forward() URL ends in
         *     `mime`). Authenticated by the form fields `timestamp`, `token`, `signature`: the hex HMAC-SHA256 of
         *     `timestamp + token` keyed with MAILGUN_WEBHOOK_SIGNING_KEY, compared in constant time; a timestamp more
         *     than MAILGUN_WEBHOOK_MAX_AGE (5 min) away or a token used before → 401, nothing stored or sent. The mail
         *     then goes through the email pipeline (loop rules, sender trust, rate limit, one reply per Message-ID, the
         *     reply by SMTP in the thread). 200 once the mail is handled for good; 503 (Retry-After) while it cannot be
         *     yet, so Mailgun retries. Not configured: 501. docs/webhooks.md.
         */
        post: operations["mailgunInbound"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/webhook/sendgrid": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Inbound mail from SendGrid Inbound Parse
         * @description SendGrid Inbound Parse POST (multipart/form-data), raw (`email` holds the full MIME) or parsed (`headers`,
         *     `from`, `to`, `subject`, `text`, `html`, `charsets`, `envelope`, `attachment-info` and files). Inbound Parse
         *     signs nothing: the Parse URL must carry SENDGRID_WEBHOOK_SECRET as `?key=<secret>` or as the basic-auth
         *     password (compared in constant time); otherwise 401 and nothing is stored or sent. Answers as
         *     /webhook/mailgun. docs/webhooks.md.
         */
        post: operations["sendgridInbound"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/webhook/ses": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Inbound mail from Amazon SES receipt notifications, delivered by SNS
         * @description An SNS HTTP(S) subscription's POST (JSON, sent as text/plain). Every message's signature is verified
         *     (SignatureVersion 1 SHA1withRSA, 2 SHA256withRSA) with the certificate at SigningCertURL, fetched over https
         *     from an allowed host only (SES_SNS_CERT_HOSTS) and cached; the TopicArn must be one of SES_SNS_TOPIC_ARNS.
         *     SubscriptionConfirmation: confirmed by a GET on SubscribeURL (also an allowed host). Notification: the SES
         *     receipt notification's `content` (SNS action, encoding UTF8 or Base64) is the mail; an S3 action's object is
         *     fetched by a SigV4-signed GET when SES_S3_BUCKETS lists its bucket (else 422; S3 403/404 → 422, S3 5xx or
         *     timeout → 503). UnsubscribeConfirmation: logged. Answers as /webhook/mailgun. docs/webhooks.md.
         */
        post: operations["sesInbound"];
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
            /** @description one Message-ID (RFC 5322 §3.6.4 msg-id, `<id@host>`, no white space or line break) of the mail this answers */
            in_reply_to?: string;
            /**
             * @description a repeat of the same message with the same key within 24 h is not delivered twice (200 with
             *     `duplicate: true`); the key with another message is a 409 and nothing is sent
             */
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
             * @description skipped: automatic | duplicate (admin keys only) | rate-limited (admin keys only) | unreadable | no-reply (the
             *     audit log's reasons); decided: unreadable (our own request for text would be sent) or refused (the secretary
             *     refused; a standard message would be sent)
             */
            reason?: string;
            /**
             * @description with `reason: rate-limited`: the budget the mail would be refused by, read without drawing from it —
             *     `sender` (RATE_LIMIT_PER_HOUR: the sender or the reply address) or `mailbox` (RATE_LIMIT_MAILBOX_PER_HOUR,
             *     key `mailbox:all`)
             */
            rate_limit?: {
                /** @enum {string} */
                limit: "sender" | "mailbox";
                /** @description the exhausted budget's key (`email:<address>`, `reply-to:<address>`, `mailbox:all`) */
                key: string;
                /** @description whole seconds until it has a unit again */
                retry_after_seconds: number;
            };
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
        WebhookResult: {
            /**
             * @description replied: the reply was accepted by SMTP; skipped: the loop rules (RFC 3834) say no reply; duplicate: this Message-ID was answered before; rate-limited: over RATE_LIMIT_PER_HOUR; no-reply: the secretary's category gets none; failed: the SMTP server refused the reply for good; subscribed/unsubscribed: SNS subscription messages; ignored: an SES notification that is not a received mail
             * @enum {string}
             */
            outcome: "replied" | "skipped" | "duplicate" | "rate-limited" | "no-reply" | "failed" | "subscribed" | "unsubscribed" | "ignored";
            /** @description the loop rule (auto_submitted, precedence, mailing_list, …) or failure reason */
            reason?: string;
            /** @description the mail's Message-ID */
            message_id?: string;
        };
        MailgunInbound: {
            /** @description Unix seconds */
            timestamp: string;
            /** @description 50 random characters */
            token: string;
            /** @description hex HMAC-SHA256 of timestamp + token */
            signature: string;
            /** @description the full MIME message (raw MIME routes) */
            "body-mime"?: string;
            sender?: string;
            from?: string;
            recipient?: string;
            subject?: string;
            "body-plain"?: string;
            "stripped-text"?: string;
            "body-html"?: string;
            "Message-Id"?: string;
            "In-Reply-To"?: string;
            References?: string;
            /** @description JSON list of [name, value] pairs, in the original order */
            "message-headers"?: string;
            "attachment-count"?: string;
        };
        SendgridInbound: {
            /** @description the full MIME message ("POST the raw */
            email?: string;
            /** @description the raw header block */
            headers?: string;
            from?: string;
            to?: string;
            subject?: string;
            text?: string;
            html?: string;
            /** @description JSON */
            envelope?: string;
            /** @description JSON: the charset of each field */
            charsets?: string;
            /** @description JSON */
            "attachment-info"?: string;
            attachments?: string;
        };
        SnsMessage: {
            /** @enum {string} */
            Type: "Notification" | "SubscriptionConfirmation" | "UnsubscribeConfirmation";
            MessageId: string;
            TopicArn: string;
            Subject?: string;
            /** @description for a Notification: the SES receipt notification as JSON */
            Message: string;
            /** Format: date-time */
            Timestamp: string;
            /** @enum {string} */
            SignatureVersion: "1" | "2";
            /** @description Base64 */
            Signature: string;
            SigningCertURL: string;
            SubscribeURL?: string;
            Token?: string;
            UnsubscribeURL?: string;
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
                    /** @description why, in an operator's words (may name hosts and URLs): only to an admin or service key, or a keyless call from this machine while that class is open */
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
            /**
             * @description `idempotency_key` already used within 24 h for another message (recipient, text, subject, in_reply_to or
             *     buttons differ): nothing was sent (draft-ietf-httpapi-idempotency-key-header §2.7). Not worth retrying.
             */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
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
    mailgunInbound: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/x-www-form-urlencoded": components["schemas"]["MailgunInbound"];
                "multipart/form-data": components["schemas"]["MailgunInbound"];
            };
        };
        responses: {
            /** @description the mail is handled (answered, deliberately not answered, or given up); do not retry */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookResult"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            413: components["responses"]["Error"];
            422: components["responses"]["Error"];
            500: components["responses"]["Error"];
            /** @description this provider's webhook (or SMTP for the replies) is not configured in this deployment */
            501: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            503: components["responses"]["Error"];
        };
    };
    sendgridInbound: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "multipart/form-data": components["schemas"]["SendgridInbound"];
            };
        };
        responses: {
            /** @description the mail is handled (answered, deliberately not answered, or given up); do not retry */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookResult"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            413: components["responses"]["Error"];
            422: components["responses"]["Error"];
            500: components["responses"]["Error"];
            /** @description this provider's webhook (or SMTP for the replies) is not configured in this deployment */
            501: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            503: components["responses"]["Error"];
        };
    };
    sesInbound: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "text/plain": string;
                "application/json": components["schemas"]["SnsMessage"];
            };
        };
        responses: {
            /** @description the mail is handled (answered, deliberately not answered, or given up); do not retry */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookResult"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            413: components["responses"]["Error"];
            422: components["responses"]["Error"];
            500: components["responses"]["Error"];
            /** @description this provider's webhook (or SMTP for the replies) is not configured in this deployment */
            501: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ErrorResponse"];
                };
            };
            503: components["responses"]["Error"];
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

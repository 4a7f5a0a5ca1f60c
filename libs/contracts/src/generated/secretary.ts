/* eslint-disable */
// Generated from openapi/secretary.yaml by `npm run generate -w libs/contracts`. Do not edit.
export interface paths {
    "/analyze-request": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Analyse an incoming request and decide what to do */
        get: operations["analyzeRequestGet"];
        put?: never;
        /** Analyse an incoming request (JSON body, for long texts) */
        post: operations["analyzeRequestPost"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/employees": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The employee directory */
        get: operations["listEmployees"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/employees/{username}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description directory username (case-insensitive, stored lower-case) */
                username: string;
            };
            cookie?: never;
        };
        /** One employee */
        get: operations["getEmployee"];
        /** Create or replace an employee (a department named here is created when missing) */
        put: operations["putEmployee"];
        post?: never;
        /** Remove an employee (their conversations stay, unlinked) */
        delete: operations["deleteEmployee"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/departments": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The departments */
        get: operations["listDepartments"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/departments/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description the department's name */
                name: string;
            };
            cookie?: never;
        };
        /** One department */
        get: operations["getDepartment"];
        /** Create or replace a department */
        put: operations["putDepartment"];
        post?: never;
        /** Remove a department (its employees keep no department) */
        delete: operations["deleteDepartment"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/conversations": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Conversations, newest first */
        get: operations["listConversations"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/conversations/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A conversation with its messages and decisions */
        get: operations["getConversation"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/stats": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Counts by channel, action and decision; failures by code; latency
         * @description The analysis counts cover all time. `audit` adds, per channel, the audit log's counts (inbound, skipped by reason, replied, failed; dry runs excluded) in the window `from`..`to`, and with `period` the same per UTC day, ISO week or month (docs/audit.md).
         */
        get: operations["getStats"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/audit-events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Records audit events (service key); a repeated event_id is ignored
         * @description The communicator reports what happened to each inbound message (received, skipped with its reason) and to each reply (delivered, failed). The whole batch is validated first: one bad event is a 400 and nothing is stored. Idempotent by `event_id`: a known id is counted in `duplicates`, not stored again.
         */
        post: operations["recordAuditEvents"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/audit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The audit log, newest first, filtered and paginated (admin key) */
        get: operations["listAuditEvents"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/prompts": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The prompt versions in force (each LLM service's GET /prompt) and the departments' persona versions */
        get: operations["getPrompts"];
        put?: never;
        post?: never;
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
    "/action-executions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The execution log of actions (newest first) */
        get: operations["listActionExecutions"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/action-executions/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One action execution */
        get: operations["getActionExecution"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/action-executions/{id}/retry": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Re-run a failed action (same execution; a Jira task an earlier try created is found by its label, not made twice) */
        post: operations["retryActionExecution"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/actions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The action catalog (every action the secretary can take, its parameters, whether it is configured, its policy) */
        get: operations["listActions"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/action-executions/{id}/approve": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Approve a held action (it runs next); also called by the communicator for a Telegram button
         * @description `decided_by` is the admin key's name. With a service key (the communicator passing on a Telegram button
         *     press) it is the body's `by`, which must be `telegram:<user id>` of a user in APPROVER_TELEGRAM_USER_IDS
         *     (403 otherwise); an admin key's body `by` is ignored.
         */
        post: operations["approveActionExecution"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/action-executions/{id}/reject": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Reject a held action (recorded as skipped, "rejected by …"; the requester is told)
         * @description Who rejected is recorded as for approveActionExecution.
         */
        post: operations["rejectActionExecution"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/rules": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Routing rules in evaluation order (priority, then id) */
        get: operations["listRules"];
        put?: never;
        /** Create a routing rule */
        post: operations["createRule"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/rules/stats": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Per rule, matches, executions and success rate (all time, a window, or per day / week / month) */
        get: operations["getRuleStats"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/rules/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: number;
            };
            cookie?: never;
        };
        /** One routing rule */
        get: operations["getRule"];
        /** Replace a routing rule */
        put: operations["replaceRule"];
        post?: never;
        /** Delete a routing rule (and its match history) */
        delete: operations["deleteRule"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/rules/{id}/toggle": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Enable a disabled rule or disable an enabled one */
        post: operations["toggleRule"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/deliveries": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Records inbound messages as handled (answered, deliberately skipped, or given up)
         * @description The communicator records every inbound message it has handled (for Telegram, `tg:<chat_id>:<message_id>` or `tg:callback:<id>`) right after its answer was delivered, so a restart that sees the message again does not answer it twice. Idempotent: a key recorded before keeps its first outcome. Keys are kept for 7 days (Telegram keeps unconfirmed updates about 24 h).
         */
        post: operations["recordDeliveries"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/deliveries/lookup": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Which of these inbound messages were already handled */
        post: operations["lookupDeliveries"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/rate-limits/consume": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Takes one unit from each key's budget, all or nothing (service key)
         * @description Atomic in one transaction: when every key has budget, one unit is taken from each and the answer is
         *     `{"allowed": true}`; otherwise nothing is taken and the answer names the first exhausted key and the whole
         *     seconds until it has a unit again. A budget is `limit` units per `window_seconds`, metered by GCRA (a unit
         *     comes back every window / limit seconds; docs/rate-limits.md). Stored in the secretary's database: shared
         *     by every communicator replica, kept across restarts. Keys of the communicator: `email:<address>`,
         *     `reply-to:<address>`, `telegram:<user id>`.
         */
        post: operations["consumeRateLimit"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/rate-limits/check": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * What /rate-limits/consume would answer now, taking nothing (service key)
         * @description The same body and verdict as `POST /rate-limits/consume`, but read-only: no unit is taken, no row is locked or
         *     written. `allowed: true` means a consume now would be allowed. For dry runs (the communicator's `POST /test`
         *     reports "would be rate limited" without spending the sender's budget; docs/audit-and-limits.md).
         */
        post: operations["checkRateLimit"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/poller-leases/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /**
         * Take a poller lease when it is free or lapsed, or renew it for its holder (service key)
         * @description The communicator replicas compete for one lease per polled resource (a mailbox, a bot token); the one
         *     that gets it polls, the others serve POST /send and take over when it lapses. Decided on the database
         *     clock. `epoch` changes at every change of holder, never at a renewal.
         */
        put: operations["acquirePollerLease"];
        post?: never;
        /** Give a poller lease up (its holder only; a no-op for anyone else) */
        delete: operations["releasePollerLease"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/telegram-parked-updates": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Park Telegram updates the communicator has not finished handling (service key)
         * @description The Bot API forgets every update below the offset of the next getUpdates call, and returns at most 100 updates
         *     from that offset (Bot API getUpdates). An update one chat holds for long (a 429 with a large `retry_after`,
         *     a slow analysis) would pin the offset; once 100 updates queue behind it no other chat is answered. The
         *     communicator stores such updates here first (the raw Update object), and only then lets the offset move past
         *     them; it removes them once they are handled (their `/deliveries` record written), and loads them at start.
         *     Idempotent per (resource, update_id): `parked` lists the ids stored with this content (now or before),
         *     `conflicts` those stored with other content (Telegram restarted its update_id sequence), which are not parked.
         *     Bounded: at most 10,000 parked updates per resource (409 `parking_full`, nothing stored) and 65,536 bytes of
         *     JSON per update (413 `payload_too_large`, nothing stored); an `update` whose own `update_id` is not the
         *     item's is refused (400, nothing stored). Parked rows are kept 2 days (by when they were parked), less than
         *     the `/deliveries` records that guard them from a second answer: older rows are no longer listed and are
         *     pruned.
         */
        post: operations["parkTelegramUpdates"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/telegram-parked-updates/list": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** The parked updates of a bot, lowest update_id first, a page at a time (service key) */
        post: operations["listParkedTelegramUpdates"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/telegram-parked-updates/remove": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Remove parked updates once handled (service key; unknown ids are ignored) */
        post: operations["removeParkedTelegramUpdates"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/webhook-tokens": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Reserve a webhook's replay token for one payload, once across replicas (service key)
         * @description Mailgun signs `timestamp + token`, not the mail: a captured signature posted again with another mail is a
         *     replay. The communicator replica that takes a signed post reserves its token here first, bound to the
         *     SHA-256 of the payload it came with, until `ttl_seconds` from now on the database clock (one statement,
         *     unique on provider and token; expired rows are deleted). 201: reserved now (free or expired before).
         *     200: already reserved for the same payload (the provider retrying that post, or this call repeated), the
         *     reservation unchanged. 409 `token_reserved`: reserved for another payload, a replay; nothing changed.
         */
        post: operations["reserveWebhookToken"];
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
        PollerLease: {
            name: string;
            holder: string;
            /** @description bumped at every change of holder */
            epoch: number;
            /** Format: date-time */
            acquired_at: string;
            /** Format: date-time */
            expires_at: string;
        };
        /** @description the polled bot, as its poller lease names it (`telegram:<bot id>`) */
        ParkedUpdateResource: string;
        /** @description Bot API Update.update_id */
        TelegramUpdateId: number;
        ParkedTelegramUpdate: {
            update_id: components["schemas"]["TelegramUpdateId"];
            /** @description the Update object as parked */
            update: Record<string, never>;
            /** Format: date-time */
            parked_at: string;
        };
        /** @enum {string} */
        Channel: "email" | "tg" | "direct";
        /**
         * @description the action the secretary should take, exactly as the contract spells it
         * @enum {string}
         */
        Action: "уточнить" | "ответить сообщением" | "создать jira-task" | "написать в telegram сотруднику" | "ответить на письмо" | "написать в рассылку департамента";
        AnalyzeRequest: {
            channel: components["schemas"]["Channel"];
            username: string;
            request: string;
            message_id?: string;
            thread_key?: string;
            /** @description the mail's Subject (email channel), for routing rules' `subject_pattern`; not part of the request text */
            subject?: string;
            sender_authentication?: components["schemas"]["SenderAuthentication"];
            /**
             * @description channel `tg`: the sender's numeric Telegram user id as the Bot API reported it; matched against the
             *     directory's `telegram_id`. Honoured only from a caller with a service key (the communicator).
             */
            telegram_user_id?: string;
            /**
             * @description Default false. true: the whole decision (guesser, analyst, routing rules, sender trust) is made and returned with
             *     `dry_run: true` and `would_execute`, but nothing is done: no action runs, no outbox row is written and
             *     nothing is stored (it continues no conversation and counts in no statistic; `message_id` is not looked
             *     up). It calls the models like any request, so it takes one unit of the caller's key's
             *     ANALYZE_RATE_LIMIT_PER_KEY_PER_MINUTE; the username's hourly limit is checked but not drawn from (429
             *     when either is exhausted, before any model is called).
             */
            dry_run?: boolean;
            /**
             * @description Only with `dry_run: true` (else 400). `client`: the dry run is decided and answered as for a client key,
             *     whatever key the caller has: the sender claims (`sender_authentication`, `telegram_user_id`) are not
             *     honoured, and `would_execute` shows the client's view (the kind of target, no rules, no operator's
             *     skip reason). Any caller may ask for it (it only ever shows less); the communicator's `POST /test` asks
             *     for it when its own caller has a client key, so that a client key learns through it no more than it
             *     would asking the secretary itself (docs/audit-and-limits.md, "POST /test and client keys").
             * @enum {string}
             */
            dry_run_view?: "client";
            /**
             * @description channel `email`: how the mail reached the communicator — the IMAP mailbox or a provider's inbound webhook.
             *     Honoured only from a caller with a service key (the communicator) on channel `email`, and ignored
             *     otherwise; it changes no decision. The secretary's audit rows of the mail (`decided`) carry it as
             *     `event_provider` (docs/audit.md, "Intake").
             * @enum {string}
             */
            intake?: "imap" | "mailgun" | "sendgrid" | "ses";
        };
        /**
         * @description channel `email`: the communicator's verdict on the sender, from the `Authentication-Results` header of the
         *     receiving server (`TRUSTED_AUTHSERV_ID`), DMARC-aligned with the `From:` domain. Honoured only from a caller
         *     with a service key; otherwise the sender counts as unauthenticated.
         */
        SenderAuthentication: {
            verified: boolean;
            /** @enum {string} */
            method: "dkim" | "spf" | "dmarc" | "none";
            /** @description why (for the execution log) */
            reason: string;
        };
        AnalysisResponse: {
            /**
             * @description whether there was enough information to determine the context
             * @example false
             */
            is_enough: boolean;
            /**
             * @description the full text the decision was made on (for a follow-up, the earlier request, the question and the answer)
             * @example Я хочу получать аналитику о операциях наших кошельков
             */
            request: string;
            action: components["schemas"]["Action"];
            /**
             * @description the clarifying question, empty when there is none
             * @example Уточните, аналитику каких операций?
             */
            question: string;
            /**
             * @description the prepared answer; when `is_enough` is false, the explanation of what is missing (the guesser's or the analyst's answer, as in the seed's example)
             * @example Для получения такой аналитики вам необходимо обратиться к аналитическому кубу.
             */
            response: string;
            /**
             * @description the seed contract's name of `response` (the same text)
             * @example Для получения такой аналитики вам необходимо обратиться к аналитическому кубу.
             */
            "context-response": string;
            /**
             * @description the guesser's classification of the request: one of its CATEGORIES (docs/llm.md); absent when the
             *     model gave none
             * @example analytics
             */
            category?: string;
            /**
             * @description the model's confidence in `category` (0–1); absent when the model gave none
             * @example 0.86
             */
            confidence?: number;
            /**
             * @description true: the request belongs to a category marked no_reply (automatic mail, marketing): nothing is sent
             *     back to the sender and no action runs; `action` is the channel's reply action, `question` and
             *     `response` are empty. Absent otherwise.
             * @example true
             */
            no_reply?: boolean;
            /** @description true when the request asked for a dry run (nothing was done); absent otherwise */
            dry_run?: boolean;
            /** @description dry runs only — what a real request would do, the side-effect action first, then the reply */
            would_execute?: components["schemas"]["WouldExecute"][];
        };
        WouldExecute: {
            action: components["schemas"]["Action"];
            /**
             * @description pending — it would run (or be sent) now; awaiting_approval — it would wait for an approver; skipped — it would not be done (see reason)
             * @enum {string}
             */
            status: "pending" | "awaiting_approval" | "skipped";
            /** @description the routing rules that matched, in evaluation order */
            rules: {
                id: number;
                name: string;
            }[];
            /** @description a Jira project key, a mailing-list address, a Telegram contact, or the address / chat the reply goes to; for a client key a side-effect target is only its kind (Jira project, department mailing list, responsible colleague (Telegram)), and rules are empty */
            target: string | null;
            /** @description why it would be skipped (operator-facing; a client key reads a fixed sentence instead) */
            reason: string | null;
            /** @description for the reply, the text the sender would receive; null otherwise */
            text: string | null;
        };
        RateLimitConsumeRequest: {
            /**
             * @description the budgets to draw one unit from, all or nothing (a key named twice counts once)
             * @example [
             *       "email:alice@corp.example",
             *       "reply-to:list@corp.example"
             *     ]
             */
            keys: string[];
            /**
             * @description units per window, the same for every key
             * @example 20
             */
            limit: number;
            /**
             * @description the window, in seconds
             * @example 3600
             */
            window_seconds: number;
        };
        RateLimitVerdict: {
            /** @description true — one unit was taken from every key; false — nothing was taken */
            allowed: boolean;
            /** @description when refused, the first exhausted key in the order given */
            key?: string;
            /** @description when refused, whole seconds until that key has a unit again */
            retry_after_seconds?: number;
        };
        Employee: {
            username: string;
            full_name: string | null;
            /** @description the address email senders are matched by (lower-case) */
            email: string | null;
            /** @description without '@' */
            telegram_username: string | null;
            /** @description numeric Telegram user id */
            telegram_id: string | null;
            department: string | null;
            position: string | null;
            /** Format: date-time */
            created_at: string;
            /** Format: date-time */
            updated_at: string;
        };
        EmployeeInput: {
            full_name?: string | null;
            email?: string | null;
            telegram_username?: string | null;
            telegram_id?: string | null;
            department?: string | null;
            position?: string | null;
        };
        Department: {
            name: string;
            /** @description the department's mailing list address */
            mailing_list: string | null;
            jira_project_key: string | null;
            /** @description Telegram username or chat id of the department's contact */
            telegram_contact: string | null;
            /** @description custom instructions (tone, systems, owners) added to both prompts for this department's requests */
            persona?: string | null;
            /** @description SHA-256 of persona */
            persona_sha256?: string | null;
            /** Format: date-time */
            created_at: string;
            /** Format: date-time */
            updated_at: string;
        };
        DepartmentInput: {
            mailing_list?: string | null;
            jira_project_key?: string | null;
            telegram_contact?: string | null;
            /** @description department instructions for both prompts; omitted keeps the current one, null or "" removes it */
            persona?: string | null;
        };
        Conversation: {
            id: number;
            channel: components["schemas"]["Channel"];
            /** @description the sender as the channel named them (lower-case) */
            sender: string;
            /** @description directory username */
            employee: string | null;
            thread_key: string | null;
            /** @enum {string} */
            status: "open" | "awaiting_clarification" | "answered" | "escalated";
            clarification_rounds: number;
            /** Format: date-time */
            created_at: string;
            /** Format: date-time */
            updated_at: string;
        };
        ConversationDetail: components["schemas"]["Conversation"] & {
            messages: {
                id: number;
                /** @enum {string} */
                role: "user" | "assistant";
                text: string;
                /** @description the caller's idempotency key */
                message_id: string | null;
                /** @enum {string|null} */
                state: "pending" | "answered" | "failed" | null;
                /** Format: date-time */
                created_at: string;
            }[];
            analyses: components["schemas"]["Analysis"][];
        };
        /** @description one attempt to answer a message (a failed attempt retried with the same message_id adds a row) */
        Analysis: {
            id: number;
            /** @description id of the user message it answers */
            message: number;
            /** @enum {string} */
            outcome: "pending" | "succeeded" | "failed";
            error_code: string | null;
            request: string;
            department?: string | null;
            position?: string | null;
            guesser_is_enough?: boolean | null;
            context?: string | null;
            analyst_is_enough?: boolean | null;
            proposed_action?: string | null;
            is_enough: boolean | null;
            action: string | null;
            question: string | null;
            response: string | null;
            /** @description the guesser's classification */
            category?: string | null;
            /** @description the classification's confidence (0–1) */
            confidence?: number | null;
            escalated?: boolean;
            provider?: string | null;
            model?: string | null;
            prompt_tokens?: number | null;
            completion_tokens?: number | null;
            guesser_ms?: number | null;
            analyst_ms?: number | null;
            duration_ms?: number | null;
            /** Format: date-time */
            created_at: string;
            /** Format: date-time */
            completed_at?: string | null;
            /** @description provenance of each LLM service call behind this attempt */
            llm_calls?: components["schemas"]["LlmCallProvenance"][];
        };
        Prompts: {
            guesser: components["schemas"]["ServicePrompt"];
            "system-analyst": components["schemas"]["ServicePrompt"];
            personas: {
                department: string;
                sha256: string;
                /** Format: date-time */
                updated_at: string | null;
            }[];
        };
        /** @description the service's GET /prompt answer (service, prompt {name, sha256, source}, models, settings), or {error} */
        ServicePrompt: {
            service?: string;
            prompt?: {
                /** @example guesser/v1 */
                name?: string;
                sha256?: string;
                source?: string;
            };
            models?: {
                provider?: string;
                model?: string;
            }[];
            settings?: {
                [key: string]: unknown;
            };
            /** @description why the service's prompt could not be read */
            error?: string;
        };
        /** @description one LLM service call behind an analysis (provenance) */
        LlmCallProvenance: {
            /** @enum {string} */
            service: "guesser" | "system-analyst";
            provider: string | null;
            model: string | null;
            prompt_name: string | null;
            prompt_sha256: string | null;
            persona_sha256: string | null;
            settings: {
                [key: string]: unknown;
            } | null;
            input_tokens: number | null;
            output_tokens: number | null;
            /** @description the provider's time as the LLM service measured it */
            latency_ms: number | null;
            /** @description the whole call as the secretary saw it */
            duration_ms: number;
        };
        Counts: {
            [key: string]: number;
        };
        Stats: {
            analyses: {
                total: number;
                succeeded: number;
                failed: number;
                pending: number;
            };
            by_channel: components["schemas"]["Counts"];
            by_action: components["schemas"]["Counts"];
            by_decision: {
                enough: number;
                not_enough: number;
            };
            failures_by_code: components["schemas"]["Counts"];
            /** @description total analysis time of succeeded analyses */
            latency_ms: {
                avg: number;
                p50: number;
                p95: number;
                max: number;
            };
            audit?: components["schemas"]["AuditStats"];
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
        /**
         * @description a rejected action is `skipped` with `decision` = rejected
         * @enum {string}
         */
        ActionExecutionStatus: "pending" | "awaiting_approval" | "succeeded" | "failed" | "skipped";
        ActionDecisionInput: {
            /** @description who decided (e.g. telegram:@boss); default: api */
            by?: string;
            reason?: string;
        };
        /** @description a message sent about the execution (to the requester, or to the approver) */
        ActionSideEffect: {
            /** @enum {string|null} */
            status: "pending" | "sent" | "not_needed" | "failed" | null;
        } & {
            [key: string]: unknown;
        };
        ActionExecution: {
            id: number;
            analysis_id?: number | null;
            conversation_id?: number | null;
            requester: string;
            channel: components["schemas"]["Channel"];
            department?: string | null;
            action: components["schemas"]["Action"];
            status: components["schemas"]["ActionExecutionStatus"];
            attempts: number;
            /** @description how many times an operator re-ran it (POST …/retry) */
            retries?: number;
            /** Format: date-time */
            next_attempt_at?: string | null;
            /** @description Jira project, or the contact / list address */
            target?: {
                [key: string]: unknown;
            } | null;
            request?: string;
            context?: string;
            analysis?: string;
            /** @description e.g. issue_key and url of a Jira task */
            result?: {
                [key: string]: unknown;
            } | null;
            error?: string | null;
            /** @enum {string|null} */
            decision?: "approved" | "rejected" | null;
            decided_by?: string | null;
            /** Format: date-time */
            decided_at?: string | null;
            decision_reason?: string | null;
            /**
             * @description why the action did not run automatically for this sender (skipped, or held for approval)
             * @enum {string|null}
             */
            withheld_reason?: "sender_unknown" | "sender_unauthenticated" | "external_domain" | null;
            matched_rule_ids: number[];
            notification?: components["schemas"]["ActionSideEffect"];
            approval_request?: components["schemas"]["ActionSideEffect"];
            /** Format: date-time */
            created_at: string;
            /** Format: date-time */
            started_at?: string | null;
            /** Format: date-time */
            finished_at?: string | null;
        };
        /** @description all given conditions must hold; none given matches every decision */
        RuleConditions: {
            channel?: components["schemas"]["Channel"];
            /** @description the requester's department (case-insensitive) */
            department?: string;
            /** @description regex on the sender (case-insensitive) */
            sender_pattern?: string;
            /** @description regex on the request (case-insensitive) */
            request_pattern?: string;
            /** @description the decision's is_enough */
            is_enough?: boolean;
            action?: components["schemas"]["Action"];
            /** @description the guesser's classification must be this category (one of its CATEGORIES) */
            category?: string;
            /**
             * @description the classification's confidence must be at least this; default 0.70 when `category` is given (a
             *     request without a confidence then never matches), no threshold otherwise
             */
            min_confidence?: number;
            /** @description regex on the mail's Subject (case-insensitive); a request without a subject never matches */
            subject_pattern?: string;
            /**
             * @description the rule also applies while the request is unclear (is_enough false). Without it a rule never touches
             *     a clarifying question; even with it, an action with a side effect never runs on an empty context.
             */
            when_unclear?: boolean;
        };
        RuleEffects: {
            action?: components["schemas"]["Action"];
            /** @description route the action to this department */
            department?: string;
            /** @description Jira project key for a created task */
            jira_project?: string;
            require_approval?: boolean;
        };
        RoutingRuleInput: {
            name: string;
            /** @description lower runs first; default 100 */
            priority?: number;
            enabled?: boolean;
            stop_on_match?: boolean;
            conditions?: components["schemas"]["RuleConditions"];
            effects?: components["schemas"]["RuleEffects"];
        };
        RoutingRule: {
            id: number;
            name: string;
            priority: number;
            enabled: boolean;
            stop_on_match: boolean;
            conditions: components["schemas"]["RuleConditions"];
            effects: components["schemas"]["RuleEffects"];
            /** Format: date-time */
            created_at: string;
            /** Format: date-time */
            updated_at: string;
            /**
             * @description only on a rule stored before patterns were checked for the linear-time engine (RE2): each pattern that
             *     cannot be compiled (a lookbehind, a backreference), by field (`conditions.request_pattern`), with the
             *     reason. Such a pattern never matches, so the rule never applies until it is fixed (PUT /rules/{id}).
             */
            pattern_problems?: {
                [key: string]: string;
            };
        };
        RoutingRuleStats: {
            rule_id: number;
            name: string;
            enabled: boolean;
            priority: number;
            /** @description analyses that matched the rule */
            matches: number;
            /** Format: date-time */
            last_matched_at?: string | null;
            /** @description actions whose matched rules include this one */
            executions: number;
            succeeded: number;
            failed: number;
            skipped: number;
            /** @description pending or awaiting approval */
            in_progress: number;
            /** @description succeeded / (succeeded + failed); null before either */
            success_rate: number | null;
            /**
             * Format: date-time
             * @description when the newest execution counted here started (or was created, if it has not started)
             */
            last_run_at?: string | null;
            /** @description with `?period=`, the counts per UTC day / ISO week / month that has any, newest first */
            periods?: {
                /**
                 * Format: date-time
                 * @description first instant of the period
                 */
                start: string;
                matches: number;
                executions: number;
                succeeded: number;
                failed: number;
                skipped: number;
                in_progress: number;
                success_rate: number | null;
            }[];
        };
        ActionCatalogEntry: {
            action: components["schemas"]["Action"];
            /** @description the short name ACTION_POLICY uses (jira, telegram, mailing_list), or reply/clarify */
            key: string;
            /** @description what the action does */
            description: string;
            /** @description true: runs from the execution log (Jira, a message to someone else); false: only the answer */
            side_effect: boolean;
            parameters: {
                name: string;
                description: string;
                /** @description where the value comes from */
                source: string;
            }[];
            /** @description whether this secretary can carry it out now */
            configured: boolean;
            /** @description what is (not) configured */
            detail?: string;
            /**
             * @description ACTION_POLICY; replies and questions are always auto
             * @enum {string}
             */
            policy: "auto" | "approve" | "off";
        };
        DeliveryKeys: string[];
        /**
         * @description sent: answered; skipped: deliberately not answered; failed: given up (a permanent error)
         * @enum {string}
         */
        DeliveryOutcome: "sent" | "skipped" | "failed";
        DeliveryRecord: {
            channel: components["schemas"]["Channel"];
            keys: components["schemas"]["DeliveryKeys"];
            outcome: components["schemas"]["DeliveryOutcome"];
            /** @description why it was skipped or given up */
            reason?: string;
        };
        Delivery: {
            key: string;
            outcome: components["schemas"]["DeliveryOutcome"];
            reason?: string | null;
            /** Format: date-time */
            recorded_at: string;
        };
        /** @enum {string} */
        AuditChannel: "email" | "telegram" | "direct" | "mailgun" | "sendgrid" | "ses";
        /** @enum {string} */
        AuditDirection: "inbound" | "outbound";
        /** @enum {string} */
        AuditOutcome: "received" | "skipped" | "decided" | "delivered" | "failed";
        AuditEventInput: {
            /** @description the writer's idempotency key (`<channel>:<message_id>:<outcome>`, `<channel>:<message_id>:reply`) */
            event_id: string;
            channel: components["schemas"]["AuditChannel"];
            direction: components["schemas"]["AuditDirection"];
            outcome: components["schemas"]["AuditOutcome"];
            /** @description skipped: automatic | rate-limited | untrusted | poison | duplicate | unreadable | no-reply | not-addressed; failed: a short machine reason (smtp-rejected, telegram-blocked, timeout) */
            reason?: string;
            /** @description RFC 5322 Message-ID or 'tg:<chat>:<message_id>' */
            message_id?: string;
            /** @description the X-Request-Id */
            request_id?: string;
            conversation_id?: number;
            /** @description mail address or 'tg:<user id>' */
            sender?: string;
            /** @description for outbound events */
            recipient?: string;
            subject?: string;
            /** @description human-readable; never secrets */
            detail?: string;
            /** @default false */
            dry_run: boolean;
            /**
             * Format: date-time
             * @description default: the database clock
             */
            occurred_at?: string;
            event_provider?: components["schemas"]["AuditEventProvider"];
        };
        AuditEvent: {
            id: number;
            event_id: string;
            channel: components["schemas"]["AuditChannel"];
            direction: components["schemas"]["AuditDirection"];
            outcome: components["schemas"]["AuditOutcome"];
            reason?: string | null;
            message_id?: string | null;
            request_id?: string | null;
            conversation_id?: number | null;
            sender?: string | null;
            recipient?: string | null;
            subject?: string | null;
            detail?: string | null;
            dry_run: boolean;
            /** Format: date-time */
            occurred_at: string;
            /** Format: date-time */
            recorded_at: string;
            /** @description the intake of the mail (AuditEventProvider's values); null when not known or not mail */
            event_provider?: string | null;
        };
        /**
         * @description The intake a mail came through (ECS `event.provider`): the IMAP mailbox or a provider's inbound webhook. The
         *     `channel` stays `email` on the secretary's own rows of a mail (its decision, its actions); this field tells
         *     the intakes apart. Filled in by the secretary for rows reported under a webhook's channel when absent.
         * @enum {string}
         */
        AuditEventProvider: "imap" | "mailgun" | "sendgrid" | "ses";
        AuditChannelCounts: {
            /** @description inbound messages (received or skipped; each message once) */
            inbound: number;
            skipped: number;
            skipped_by_reason: components["schemas"]["Counts"];
            /** @description decisions taken */
            decided: number;
            /** @description replies delivered (outbound events whose id ends in `:reply`): `requester_replies` + `action_notices` */
            replied: number;
            /**
             * @description answers delivered to requesters on the channel they asked in (the communicator's `<channel>:<message>:reply`
             *     events); action notices not included
             */
            requester_replies: number;
            /**
             * @description outcome notices of actions delivered to the requester (the secretary's `action:<id>:reply` events: the Jira
             *     task's key, that a colleague or the department list has the request); counted in `replied` too
             */
            action_notices: number;
            /** @description outbound deliveries accepted (replies */
            delivered: number;
            /** @description outbound deliveries that failed */
            failed: number;
            failed_by_reason: components["schemas"]["Counts"];
        };
        /** @description the audit log's counts per channel (dry runs excluded), in the window asked for */
        AuditStats: {
            /** Format: date-time */
            from: string | null;
            /** Format: date-time */
            to: string | null;
            channels: {
                [key: string]: components["schemas"]["AuditChannelCounts"];
            };
            /** @description with `period`, the counts per UTC day / ISO week / month that has any, newest first */
            periods?: {
                /** Format: date-time */
                start: string;
                channels: {
                    [key: string]: components["schemas"]["AuditChannelCounts"];
                };
            }[];
        };
        WebhookTokenReservationRequest: {
            /**
             * @description whose token (Mailgun's webhook signature)
             * @enum {string}
             */
            provider: "mailgun";
            /** @description the token the provider signed */
            token: string;
            /** @description hex SHA-256 of the payload the token came with */
            payload_sha256: string;
            /** @description how long the reservation lasts from now */
            ttl_seconds: number;
        };
        WebhookTokenReservation: {
            provider: string;
            token: string;
            payload_sha256: string;
            /** Format: date-time */
            reserved_at: string;
            /** Format: date-time */
            expires_at: string;
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
    analyzeRequestGet: {
        parameters: {
            query: {
                /**
                 * @description the channel the request came from
                 * @example email
                 */
                channel: components["schemas"]["Channel"];
                /**
                 * @description who sent the request (email address, Telegram username or id, or a directory username)
                 * @example smirnovanton
                 */
                username: string;
                /**
                 * @description the text of the request
                 * @example Я хочу получать аналитику о операциях наших кошельков
                 */
                request: string;
                /** @description idempotency key, unique per channel; a repeat returns the stored answer */
                message_id?: string;
                /** @description a key that ties messages of one conversation together (e.g. the first Message-ID of an email thread) */
                thread_key?: string;
                /** @description the mail's Subject (email channel), for routing rules' `subject_pattern`; not part of the request text */
                subject?: string;
                /** @description true — decide without doing anything (see AnalyzeRequest.dry_run); default false */
                dry_run?: boolean;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the decision */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AnalysisResponse"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            413: components["responses"]["Error"];
            429: components["responses"]["Error"];
            500: components["responses"]["Error"];
            502: components["responses"]["Error"];
            503: components["responses"]["Error"];
            504: components["responses"]["Error"];
        };
    };
    analyzeRequestPost: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["AnalyzeRequest"];
            };
        };
        responses: {
            /** @description the decision */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AnalysisResponse"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            413: components["responses"]["Error"];
            429: components["responses"]["Error"];
            500: components["responses"]["Error"];
            502: components["responses"]["Error"];
            503: components["responses"]["Error"];
            504: components["responses"]["Error"];
        };
    };
    listEmployees: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description every employee, by username */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        employees: components["schemas"]["Employee"][];
                    };
                };
            };
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    getEmployee: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description directory username (case-insensitive, stored lower-case) */
                username: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the employee */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Employee"];
                };
            };
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            404: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    putEmployee: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description directory username (case-insensitive, stored lower-case) */
                username: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["EmployeeInput"];
            };
        };
        responses: {
            /** @description replaced */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Employee"];
                };
            };
            /** @description created */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Employee"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            409: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    deleteEmployee: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description directory username (case-insensitive, stored lower-case) */
                username: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description deleted */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            404: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    listDepartments: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description every department, by name */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        departments: components["schemas"]["Department"][];
                    };
                };
            };
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    getDepartment: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description the department's name */
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the department */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Department"];
                };
            };
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            404: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    putDepartment: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description the department's name */
                name: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["DepartmentInput"];
            };
        };
        responses: {
            /** @description replaced */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Department"];
                };
            };
            /** @description created */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Department"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    deleteDepartment: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description the department's name */
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description deleted */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            404: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    listConversations: {
        parameters: {
            query?: {
                /** @description the sender as the channel named them, or their directory username */
                username?: string;
                channel?: components["schemas"]["Channel"];
                limit?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the conversations */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        conversations: components["schemas"]["Conversation"][];
                    };
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    getConversation: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: number;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the conversation */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ConversationDetail"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            404: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    getStats: {
        parameters: {
            query?: {
                /** @description count only audit events that occurred at or after this time */
                from?: string;
                /** @description count only audit events that occurred before this time */
                to?: string;
                /** @description also split the audit counts into UTC calendar periods (`audit.periods`, newest first) */
                period?: "day" | "week" | "month";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the statistics since the database was created */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Stats"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    recordAuditEvents: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    events: components["schemas"]["AuditEventInput"][];
                };
            };
        };
        responses: {
            /** @description the events are stored (newly or before) */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        /** @description events newly stored by this call */
                        accepted: number;
                        /** @description events whose event_id was known (ignored) */
                        duplicates: number;
                    };
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    listAuditEvents: {
        parameters: {
            query?: {
                channel?: components["schemas"]["AuditChannel"];
                /** @description the sender (mail address or `tg:<user id>`), case-insensitive */
                sender?: string;
                reason?: string;
                outcome?: components["schemas"]["AuditOutcome"];
                direction?: components["schemas"]["AuditDirection"];
                message_id?: string;
                request_id?: string;
                /** @description only events that occurred at or after this time */
                since?: string;
                /** @description only events that occurred before this time */
                until?: string;
                /** @description only dry runs (true) or only real events (false); absent, both */
                dry_run?: boolean;
                /** @description only events of mail that came through this intake (`imap`, or a webhook provider) */
                event_provider?: components["schemas"]["AuditEventProvider"];
                limit?: number;
                /** @description the `next_cursor` of the previous page (opaque; pages go from newest to oldest) */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description events */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        items: components["schemas"]["AuditEvent"][];
                        /** @description pass as `cursor` for the next (older) page; null on the last page */
                        next_cursor: string | null;
                    };
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    getPrompts: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description guesser and system analyst as they answered (or `error` when one did not), and personas */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Prompts"];
                };
            };
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
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
    listActionExecutions: {
        parameters: {
            query?: {
                status?: components["schemas"]["ActionExecutionStatus"];
                action?: components["schemas"]["Action"];
                /** @description the requester (directory username, or the sender when unknown) */
                employee?: string;
                /** @description only executions created at or after this time */
                since?: string;
                analysis_id?: number;
                limit?: number;
                /** @description only executions whose matched rules include this routing rule */
                rule_id?: number;
                /** @description the requester (directory username, or the sender when unknown; case-insensitive); same as `employee` */
                requester?: string;
                /** @description only executions created at or after this time */
                from?: string;
                /** @description only executions created before this time */
                to?: string;
                /** @description the `next_cursor` of the previous page (pages go from newest to oldest) */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description executions */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        executions: components["schemas"]["ActionExecution"][];
                        /** @description pass as `cursor` for the next (older) page; null on the last page */
                        next_cursor: string | null;
                    };
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    getActionExecution: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: number;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the execution */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ActionExecution"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            404: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    retryActionExecution: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: number;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the execution, pending again (the worker runs it now) */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ActionExecution"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            404: components["responses"]["Error"];
            409: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    listActions: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the catalog, in the contract's order of actions */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        actions: components["schemas"]["ActionCatalogEntry"][];
                    };
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            500: components["responses"]["Error"];
        };
    };
    approveActionExecution: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: number;
            };
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": components["schemas"]["ActionDecisionInput"];
            };
        };
        responses: {
            /** @description the execution, now pending */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ActionExecution"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            404: components["responses"]["Error"];
            409: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    rejectActionExecution: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: number;
            };
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": components["schemas"]["ActionDecisionInput"];
            };
        };
        responses: {
            /** @description the execution, now skipped */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ActionExecution"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            404: components["responses"]["Error"];
            409: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    listRules: {
        parameters: {
            query?: {
                enabled?: boolean;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description rules */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        rules: components["schemas"]["RoutingRule"][];
                    };
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    createRule: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RoutingRuleInput"];
            };
        };
        responses: {
            /** @description the rule */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RoutingRule"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    getRuleStats: {
        parameters: {
            query?: {
                /** @description count only matches and executions at or after this time */
                from?: string;
                /** @description count only matches and executions before this time */
                to?: string;
                /** @description also split each rule's counts into UTC calendar periods (`periods`, newest first) */
                period?: "day" | "week" | "month";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description statistics */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        rules: components["schemas"]["RoutingRuleStats"][];
                    };
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    getRule: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: number;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the rule */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RoutingRule"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            404: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    replaceRule: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: number;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RoutingRuleInput"];
            };
        };
        responses: {
            /** @description the rule */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RoutingRule"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            404: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    deleteRule: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: number;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description deleted */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            404: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    toggleRule: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: number;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the rule */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RoutingRule"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            404: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    recordDeliveries: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["DeliveryRecord"];
            };
        };
        responses: {
            /** @description the keys are recorded (newly or before) */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        /** @description keys recorded by this call (0 when all were known) */
                        recorded: number;
                    };
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    lookupDeliveries: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    keys: components["schemas"]["DeliveryKeys"];
                };
            };
        };
        responses: {
            /** @description the keys found, with their outcome; keys not listed were not handled */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        handled: components["schemas"]["Delivery"][];
                    };
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    consumeRateLimit: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RateLimitConsumeRequest"];
            };
        };
        responses: {
            /** @description the verdict (a refusal is a 200 too; nothing was taken) */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RateLimitVerdict"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    checkRateLimit: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RateLimitConsumeRequest"];
            };
        };
        responses: {
            /** @description the verdict a consume would get now (nothing was taken either way) */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RateLimitVerdict"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    acquirePollerLease: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description the polled resource, without secrets (`imap:<user>@<host>:<port>/<mailbox>`, `telegram:<bot id>`) */
                name: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    /** @description the replica asking (host name */
                    holder: string;
                    /** @description how long the lease lasts from now */
                    ttl_ms: number;
                };
            };
        };
        responses: {
            /** @description the lease is the caller's until expires_at */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["PollerLease"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            409: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    releasePollerLease: {
        parameters: {
            query: {
                holder: string;
            };
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description released */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    parkTelegramUpdates: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    resource: components["schemas"]["ParkedUpdateResource"];
                    updates: {
                        update_id: components["schemas"]["TelegramUpdateId"];
                        /** @description the Update object as the Bot API sent it */
                        update: Record<string, never>;
                    }[];
                };
            };
        };
        responses: {
            /** @description the updates stored (or stored before with the same content), and the conflicting ids */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        parked: components["schemas"]["TelegramUpdateId"][];
                        conflicts: components["schemas"]["TelegramUpdateId"][];
                    };
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            409: components["responses"]["Error"];
            413: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    listParkedTelegramUpdates: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    resource: components["schemas"]["ParkedUpdateResource"];
                    /** @description only updates above this id (default -1: all); the last id of the previous page */
                    after_update_id?: number;
                    /** @description at most this many (default 100) */
                    limit?: number;
                };
            };
        };
        responses: {
            /** @description the page; fewer than `limit` updates means the end */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        updates: components["schemas"]["ParkedTelegramUpdate"][];
                    };
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    removeParkedTelegramUpdates: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    resource: components["schemas"]["ParkedUpdateResource"];
                    update_ids: components["schemas"]["TelegramUpdateId"][];
                };
            };
        };
        responses: {
            /** @description the rows removed */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        /** @description rows removed by this call (0 when none was parked) */
                        removed: number;
                    };
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
    reserveWebhookToken: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["WebhookTokenReservationRequest"];
            };
        };
        responses: {
            /** @description the token was already reserved for this same payload (unchanged) */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookTokenReservation"];
                };
            };
            /** @description the token is reserved for this payload until expires_at */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookTokenReservation"];
                };
            };
            400: components["responses"]["Error"];
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
            409: components["responses"]["Error"];
            500: components["responses"]["Error"];
            503: components["responses"]["Error"];
        };
    };
}

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
             * @description the prepared answer, empty when a question is asked
             * @example Для получения такой аналитики вам необходимо обратиться к аналитическому кубу.
             */
            response: string;
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

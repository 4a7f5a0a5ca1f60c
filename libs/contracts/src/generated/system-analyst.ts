/* eslint-disable */
// Generated from openapi/system-analyst.yaml by `npm run generate -w libs/contracts`. Do not edit.
export interface paths {
    "/prepare-analititcs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Determine the actions or components to analyse to answer the user */
        get: operations["prepareAnalytics"];
        put?: never;
        /** Determine the actions or components to analyse (JSON body, for long texts) */
        post: operations["prepareAnalyticsPost"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/prepare-analytics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Alias of /prepare-analititcs */
        get: operations["prepareAnalyticsAlias"];
        put?: never;
        /** Alias of POST /prepare-analititcs */
        post: operations["prepareAnalyticsAliasPost"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/prompt": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The active prompt version, model chain and generation settings */
        get: operations["getPrompt"];
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
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /**
         * @description the action the secretary should take, exactly as the contract spells it
         * @enum {string}
         */
        Action: "уточнить" | "ответить сообщением" | "создать jira-task" | "написать в telegram сотруднику" | "ответить на письмо" | "написать в рассылку департамента";
        AnalyticsRequest: {
            /**
             * @description the context of the request, as the guesser described it
             * @example Младший системный аналитик из клиентского департамента хочет сформировать срезы по авторизационным операциям кошельков, это домен b2c.
             */
            context: string;
            /**
             * @description the text of the request (untrusted); with `context`, longer than LLM_MAX_INPUT_CHARS → 413
             * @example Я хочу получать аналитику о операциях наших кошельков. Меня интересуют операции авторизации
             */
            request: string;
            /**
             * @description the department's custom instructions (operator text from the secretary's directory, not user data); added to
             *     the prompt as a separate delimited section
             */
            persona?: string;
        };
        AnalyticsResponse: {
            /**
             * @description whether there is enough to prepare the analysis
             * @example true
             */
            is_enough: boolean;
            /**
             * @description what must be done, in which systems
             * @example Доработать аналитический куб авторизаций, добавив статус авторизации, и выполнить запрос к кубу
             */
            response: string;
            action?: components["schemas"]["Action"];
            llm?: components["schemas"]["LlmCall"];
        };
        /**
         * @description Optional metadata about the model call behind the answer, for the caller's records (cost, model in use).
         *     Not part of the decision: clients must work without it.
         */
        LlmCall: {
            /**
             * @description the provider that answered (a fallback's name when the primary failed)
             * @example yandexgpt
             */
            provider: string;
            /**
             * @description the model that answered
             * @example yandexgpt-lite
             */
            model: string;
            /**
             * @description prompt tokens of every call behind this answer (a repair request included), as the provider reported them
             * @example 412
             */
            input_tokens: number;
            /**
             * @description completion tokens of every call behind this answer, as the provider reported them
             * @example 58
             */
            output_tokens: number;
            /**
             * @description time spent on the provider that answered
             * @example 1830
             */
            latency_ms: number;
            /** @description the prompt that produced the answer (provenance) */
            prompt?: {
                /**
                 * @description `<service>/<version>` of a prompt in prompts/, or the PROMPT_FILE's name
                 * @example guesser/v1
                 */
                name: string;
                /** @description SHA-256 of the prompt text (UTF-8 */
                sha256: string;
            };
            /** @description SHA-256 of the department persona added to the prompt (absent when none was sent) */
            persona_sha256?: string;
            settings?: components["schemas"]["GenerationSettings"];
        };
        /** @description the generation settings the answer was produced with */
        GenerationSettings: {
            /** @example 0.2 */
            temperature: number;
            /**
             * @description LLM_MAX_OUTPUT_TOKENS
             * @example 2000
             */
            max_output_tokens: number;
            /**
             * @description LLM_JSON_MODE
             * @example auto
             */
            json_mode: string;
        };
        /** @description the prompt, models and settings this instance answers with */
        PromptInfo: {
            service: string;
            prompt: {
                /** @example guesser/v1 */
                name: string;
                sha256: string;
                /** @enum {string} */
                source: "built-in" | "PROMPT_FILE";
            };
            /** @description the provider chain, primary first */
            models: {
                provider: string;
                model: string;
            }[];
            settings: components["schemas"]["GenerationSettings"];
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
    prepareAnalytics: {
        parameters: {
            query: {
                /**
                 * @description the context of the request, as the guesser described it (required, unless given as `preparedcontext`)
                 * @example Младший системный аналитик из клиентского департамента хочет сформировать срезы по авторизационным операциям кошельков, это домен b2c.
                 */
                context?: string;
                /** @description the seed contract's name of `context` (an alias; `context` wins when both are given) */
                preparedcontext?: string;
                /**
                 * @description the text of the request (untrusted)
                 * @example Я хочу получать аналитику о операциях наших кошельков. Меня интересуют операции авторизации
                 */
                request: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the analysis */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AnalyticsResponse"];
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
    prepareAnalyticsPost: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["AnalyticsRequest"];
            };
        };
        responses: {
            /** @description the analysis */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AnalyticsResponse"];
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
    prepareAnalyticsAlias: {
        parameters: {
            query: {
                /**
                 * @description the context of the request, as the guesser described it (required, unless given as `preparedcontext`)
                 * @example Младший системный аналитик из клиентского департамента хочет сформировать срезы по авторизационным операциям кошельков, это домен b2c.
                 */
                context?: string;
                /** @description the seed contract's name of `context` (an alias; `context` wins when both are given) */
                preparedcontext?: string;
                /**
                 * @description the text of the request (untrusted)
                 * @example Я хочу получать аналитику о операциях наших кошельков. Меня интересуют операции авторизации
                 */
                request: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the analysis */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AnalyticsResponse"];
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
    prepareAnalyticsAliasPost: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["AnalyticsRequest"];
            };
        };
        responses: {
            /** @description the analysis */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AnalyticsResponse"];
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
    getPrompt: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description what this instance answers with */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["PromptInfo"];
                };
            };
            401: components["responses"]["Error"];
            403: components["responses"]["Error"];
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

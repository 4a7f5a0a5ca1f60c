import { runLlmService } from '@workemon/llm';
import { GUESSER_SPEC } from './app.js';
import { loadConfig } from './config.js';

runLlmService(GUESSER_SPEC, loadConfig);

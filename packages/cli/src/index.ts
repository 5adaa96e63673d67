// The `harbormq` command as a library: flag parsing, the configuration schema and the log format,
// for tests and for tools that want to validate a configuration file. The bin is main.ts.
export { parseFlags, usage } from "./args.js";
export type { CliFlags, ParsedArgs } from "./args.js";
export { ConfigFile, decodeConfig, parseConfigText, reportErrors, resolveSettings, defaultPorts, defaultDataDir } from "./config.js";
export type { ListenerSettings, PersistenceSettings, Settings, LogLevel, LogFormat, Parsed } from "./config.js";
export { EventLog, createLogger, displayRemote, formatLine, logEvent, reasonName } from "./log.js";
export type { Logger, Fields } from "./log.js";

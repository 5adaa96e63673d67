// Errors of opening a data directory. Each says what is wrong and what the operator can do; none
// of the situations they describe ever leads to the database being written.

/** Base class: `instanceof StoreOpenError` tells "cannot use this data" from bugs. */
export class StoreOpenError extends Error {
  readonly file: string;
  constructor(message: string, file: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreOpenError";
    this.file = file;
  }
}

/** Another process (or another store in this process) has the database open. */
export class StoreLockedError extends StoreOpenError {
  constructor(file: string, options?: { cause?: unknown }) {
    super(
      `harbormq: ${file} is in use by another broker (the SQLite database is exclusively locked); ` +
        `stop that broker or use another data directory`,
      file,
      options,
    );
    this.name = "StoreLockedError";
  }
}

/** The database was written by a newer harbormq (schema version above the one this build knows). */
export class StoreVersionError extends StoreOpenError {
  readonly found: number;
  readonly supported: number;
  constructor(file: string, found: number, supported: number) {
    super(
      `harbormq: ${file} has data format version ${found}, this harbormq reads version ${supported} ` +
        `at most; upgrade harbormq (the file was left untouched)`,
      file,
    );
    this.name = "StoreVersionError";
    this.found = found;
    this.supported = supported;
  }
}

/** The file is not a SQLite database, is damaged, or is some other program's database. */
export class StoreCorruptError extends StoreOpenError {
  constructor(file: string, detail: string, options?: { cause?: unknown }) {
    super(`harbormq: ${file} is not a usable harbormq database (${detail}); the file was left untouched: move it away or restore a backup`, file, options);
    this.name = "StoreCorruptError";
  }
}

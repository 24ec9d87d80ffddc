import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../../../shared/constants.js';
import { EnvFileFlagStore } from '../../adapters/env-file.js';
import type { ConfigStore, ConfigValues } from '../types.js';
import { readSnapshotFile, restoreFileSnapshot } from './file-snapshot.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** An env file (KEY=value lines): the flag store's line-preserving editor, plus snapshots of its bytes. */
export class EnvFileConfigStore implements ConfigStore {
  private readonly flags: EnvFileFlagStore;

  constructor(private readonly path: string) {
    this.flags = new EnvFileFlagStore(path);
  }

  describe(): string {
    return this.flags.describe();
  }

  read(keys: string[]): Promise<ConfigValues> {
    return this.flags.read(keys);
  }

  write(values: ConfigValues): Promise<{ changed: boolean }> {
    const bad = Object.keys(values).filter((k) => !ENV_NAME.test(k));
    if (bad.length)
      throw ApplicationFailure.nonRetryable(
        `${this.describe()}: not environment variable names: ${bad.join(', ')}`,
        ErrorType.EnvironmentInvalid,
      );
    return this.flags.write(values);
  }

  snapshot(): Promise<Buffer> {
    return readSnapshotFile(this.path);
  }

  restoreSnapshot(content: Buffer): Promise<{ changed: boolean }> {
    return restoreFileSnapshot(this.path, content);
  }
}

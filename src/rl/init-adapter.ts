import { join } from 'node:path';
import { kebab } from '../io/settings-schema.js';
import { ADAPTER_CONFIG_FILE, openPeftAdapter } from '../nn/lora-peft.js';
import type { GrpoConfig } from './grpo-config.js';

/** What an adapter is (its shape and scaling): a run that starts from it takes these from it. */
const DEFINED_BY_ADAPTER = ['loraRank', 'loraAlpha', 'loraTargets', 'useRslora'] as const;

/**
 * A run that starts from an adapter (--init-adapter) trains that adapter: its rank, alpha, targets
 * and scaling are the adapter's. A flag the user gave that says otherwise is refused; the others are
 * set to the adapter's values, so the banner and trainer_state.json report what really trains.
 * Dropout is how it trains, not what it is: a given --lora-dropout applies, otherwise the adapter's.
 */
export function adoptAdapterSettings(config: GrpoConfig, adapterDir: string, given: ReadonlySet<string>): GrpoConfig {
  const { settings, weights } = openPeftAdapter(adapterDir);
  weights.close();
  const adapter: Pick<GrpoConfig, (typeof DEFINED_BY_ADAPTER)[number] | 'loraDropout'> = {
    loraRank: settings.rank,
    loraAlpha: settings.alpha,
    loraTargets: typeof settings.targetModules === 'string' ? [settings.targetModules] : [...settings.targetModules],
    useRslora: settings.useRslora,
    loraDropout: given.has('loraDropout') ? config.loraDropout : settings.dropout,
  };
  const conflicts = DEFINED_BY_ADAPTER.filter((key) => given.has(key) && JSON.stringify(config[key]) !== JSON.stringify(adapter[key]));
  if (conflicts.length) {
    throw new Error(
      `--init-adapter ${adapterDir}: ${conflicts.map((key) => `--${kebab(key)} ${JSON.stringify(config[key])} conflicts with the adapter's ${JSON.stringify(adapter[key])}`).join(', ')} ` +
        `(${join(adapterDir, ADAPTER_CONFIG_FILE)}); leave these flags out to train the adapter as it is`,
    );
  }
  return { ...config, ...adapter };
}

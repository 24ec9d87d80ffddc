// The demo SQLite application's vocabulary: realistic text for the rows the seed and the service write.
export const WORDS = (
  'rollback migration schema index vacuum checkpoint replica backup restore snapshot latency throughput ' +
  'agent task session memory vector embedding semantic search document sync queue worker retry timeout ' +
  'deploy release canary feature flag config secret audit metric alert dashboard incident runbook escalation ' +
  'postgres sqlite cache shard partition lease lock barrier quorum consensus leader follower heartbeat ' +
  'parser tokenizer planner optimizer executor scheduler allocator compiler linker loader bundle manifest ' +
  'customer invoice payment refund ledger account balance transfer settlement report export import batch ' +
  'kernel network socket buffer stream channel pipeline filter transform aggregate window watermark offset'
).split(' ');

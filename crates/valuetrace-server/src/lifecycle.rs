//! The data lifecycle: where a project's data lives, and so what retention and erase must reach.
//!
//! This module is the one owner of retention (a project keeps its data only as long as its
//! settings say) and erase (a person's data removed everywhere, on request). Both are wired here,
//! above the crates that hold the data, so that no holder is forgotten; a new place that keeps
//! project data is added to the list below and to both operations.
//!
//! Identity. Raw user ids never reach disk: events carry the pseudonym
//! `HMAC-SHA256(project key, raw id)` ([`crate::pseudonym`]), and a project may have several key
//! versions (`v<N>.` prefixes). Erasing a person therefore starts from the raw id the request
//! names, pseudonymized under *every* key version the project still has data for; user, account
//! and session ids are all pseudonyms.
//!
//! The places, under `data_dir` (`config.data_dir`):
//!
//! | place | what it holds of a project | where in the code |
//! |---|---|---|
//! | write-ahead log, `wal/` | accepted events not yet in Parquet, as frames `{project, events}` (pseudonymized), until the persist that covers them removes their segment | `crate::pipeline`, `valuetrace-wal` |
//! | Parquet days, `store/projects/<project>/<table>/<day>/*.parquet` | every stored event, one directory per table and UTC day; compaction rewrites a day's small files into one | `valuetrace_store::EmbeddedStore` (`persist`, `compact`) |
//! | buffered batches (memory) | events accepted since the last persist, per (table, day) | `valuetrace_store::project::ProjectData` |
//! | rollup cells (memory) and their snapshots, `.../<day>/rollups.snapshot` | minute, hour and day cells per endpoint and dimension: counts, latency sketches, value sums, *distinct-user sketches* (exact sets of pseudonym hashes up to 512 users, then HyperLogLog registers) | `valuetrace_store::rollup`, `valuetrace_store::snapshot` |
//! | dedup index (memory) | the event ids of the last `dedup_window`, rebuilt at start-up from recent Parquet | `valuetrace_store::dedup` |
//! | fact segments and the id interner (memory) | compact columns per Parquet file and buffered batch, and the pseudonyms behind every dense user, session and account id | `valuetrace_facts::FactsCache` |
//! | the dashboard's answer cache (memory) | rendered answers and pages per question, up to their freshness | `valuetrace_dashboard` |
//! | alert engine state, `alerts/<project>.json` | rule states, history and silences: metric values and series labels (routes, methods), never user ids | `valuetrace_alerts::Engine` |
//! | data-quality ledger, `quality.json` | counts of accepted and rejected events by reason, type and SDK; no ids | `crate::quality` |
//! | pseudonymization keys, `secrets/` | the per-project HMAC keys (not data, but erase and re-keying depend on them) | `crate::pseudonym` |
//!
//! Retention removes whole Parquet days past a project's retention, the rollup cells and
//! snapshots of those days, and the fact segments built from them (their source ids are then
//! never asked for again and age out of the cache; the interner keeps ids until the project's
//! facts are rebuilt). Erase must rewrite the Parquet days that hold the person's pseudonyms
//! (new files get new source ids, so no cached segment can answer for the old rows), drop the
//! person from the WAL frames not yet persisted (or persist first), rebuild the distinct-user
//! sketches of the cells they touched (an HLL register cannot forget one user), forget the
//! interned pseudonyms, and invalidate the dashboard's cached answers of the project.

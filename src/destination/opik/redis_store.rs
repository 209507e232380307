//! The trace table shared on Redis (`state.backend = "redis"`), so that
//! replicas behind a plain Service assemble one Opik trace per OTel trace.
//!
//! One key per trace, `<key_prefix><destination>:<trace id hex>`, a hash of
//! `v` (version) and `d` (the entry as [`super::trace_table`] encodes it),
//! expiring `trace_ttl` after its last write. Two scripts keep it atomic:
//!
//! - **claim**: the first replica to see a trace creates the key (version 1)
//!   with its entry, and so its Opik id; every other replica gets that entry
//!   back instead (first writer wins, as `SET NX`).
//! - **update**: compare-and-set on the version. A replica whose version is
//!   stale gets the current entry back, merges what it saw into it
//!   (`OpenTrace::absorb`: earliest start, latest end, first root, union of
//!   tags…) and tries again, so no replica's partial state replaces another's.
//!   Each successful update stamps the entry with a `last_updated_at` later
//!   than the previous one; trace rows carry it, so Opik keeps the row built
//!   from the most complete state.
//!
//! While Redis does not answer, the mapper waits and retries (the spool keeps
//! accepting; the destination catches up when Redis is back). Every failure
//! is counted in `tracebridge_trace_state_errors_total{reason="unavailable"}`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::{Client, Connection, IntoConnectionInfo, RedisResult, Script, Value};

use super::state::RedisTarget;
use crate::pdata::hex_id;
use crate::telemetry::DestinationTelemetry;
use crate::telemetry::reason::StateError;

/// Set when the daemon starts shutting down: from then on no call waits for
/// Redis (a drain must not hang on it; what is not delivered by the
/// deadline stays in the spool).
static STOPPING: AtomicBool = AtomicBool::new(false);

/// The daemon is shutting down (see [`STOPPING`]).
pub fn shutdown_started() {
    STOPPING.store(true, Ordering::Relaxed);
}

const CLAIM: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {tonumber(redis.call('HGET', KEYS[1], 'v')), redis.call('HGET', KEYS[1], 'd')}
end
redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1}
";

const UPDATE: &str = r"
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then
  return {v, redis.call('HGET', KEYS[1], 'd')}
end
redis.call('HSET', KEYS[1], 'v', v + 1, 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {v + 1}
";

/// What a claim or an update found.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written; the entry is now at this version.
    Written(u64),
    /// Someone else's entry is there, at this version.
    Taken(u64, Vec<u8>),
}

/// One destination's connection to the shared table.
pub struct RedisStore {
    client: Option<Client>,
    conn: Option<Connection>,
    prefix: String,
    ttl_ms: u64,
    timeout: Duration,
    claim: Script,
    update: Script,
    telemetry: DestinationTelemetry,
    /// Wait for Redis however long it takes (false once stopping).
    patient: bool,
}

impl RedisStore {
    pub fn new(target: &RedisTarget, ttl: Duration, telemetry: DestinationTelemetry) -> Self {
        let client = match client(target) {
            Ok(c) => Some(c),
            Err(e) => {
                telemetry.state_error(StateError::Open, &format!("redis: {e}"));
                None
            }
        };
        Self {
            client,
            conn: None,
            prefix: target.key_prefix.clone(),
            ttl_ms: ttl.as_millis().max(1) as u64,
            timeout: target.timeout,
            claim: Script::new(CLAIM),
            update: Script::new(UPDATE),
            telemetry,
            patient: true,
        }
    }

    /// At shutdown: one attempt per call, so an unreachable Redis cannot
    /// hold the drain (the spans are delivered; only the final merge of the
    /// trace rows is skipped).
    pub fn stop_waiting(&mut self) {
        self.patient = false;
    }

    /// Whether a client could be built (a bad URL leaves the table in memory).
    pub fn is_usable(&self) -> bool {
        self.client.is_some()
    }

    fn key(&self, tid: &[u8; 16]) -> String {
        format!("{}{}", self.prefix, hex_id(tid))
    }

    /// Creates the entry of `tid` unless another replica did first.
    pub fn claim(&mut self, tid: &[u8; 16], entry: &[u8]) -> Option<Outcome> {
        let key = self.key(tid);
        let ttl = self.ttl_ms;
        self.retrying(|s, conn| {
            s.claim
                .key(&key)
                .arg(entry)
                .arg(ttl)
                .invoke::<Vec<Value>>(conn)
        })
    }

    /// Replaces the entry of `tid` if it is still at `version`.
    pub fn update(&mut self, tid: &[u8; 16], version: u64, entry: &[u8]) -> Option<Outcome> {
        let key = self.key(tid);
        let ttl = self.ttl_ms;
        self.retrying(|s, conn| {
            s.update
                .key(&key)
                .arg(version)
                .arg(entry)
                .arg(ttl)
                .invoke::<Vec<Value>>(conn)
        })
    }

    /// Runs `call` until Redis answers, reconnecting with a growing pause
    /// (up to 5 s) meanwhile. `None` without a usable client, or after one
    /// failed attempt once stopping.
    fn retrying(
        &mut self,
        call: impl Fn(&Self, &mut Connection) -> RedisResult<Vec<Value>>,
    ) -> Option<Outcome> {
        let mut pause = Duration::from_millis(50);
        loop {
            let mut conn = match self.conn.take() {
                Some(c) => c,
                None => match blocking(|| self.connect())? {
                    Ok(c) => c,
                    Err(e) => {
                        self.unavailable(&e, &mut pause)?;
                        continue;
                    }
                },
            };
            match blocking(|| call(self, &mut conn)).map(|v| outcome(&v)) {
                Ok(Some(o)) => {
                    self.conn = Some(conn);
                    return Some(o);
                }
                Ok(None) => {
                    self.telemetry
                        .state_error(StateError::Decode, "redis: unexpected script reply");
                    self.conn = Some(conn);
                    return None;
                }
                Err(e) => self.unavailable(&e, &mut pause)?,
            }
        }
    }

    fn connect(&self) -> Option<RedisResult<Connection>> {
        let client = self.client.as_ref()?;
        Some(
            client
                .get_connection_with_timeout(self.timeout)
                .and_then(|c| {
                    c.set_read_timeout(Some(self.timeout))?;
                    c.set_write_timeout(Some(self.timeout))?;
                    Ok(c)
                }),
        )
    }

    /// Counts, logs (rate-limited) and waits before the next attempt.
    fn unavailable(&self, e: &redis::RedisError, pause: &mut Duration) -> Option<()> {
        if !self.patient || STOPPING.load(Ordering::Relaxed) {
            self.telemetry.state_error(
                StateError::Unavailable,
                &format!("redis: {e} (stopping: not retried)"),
            );
            return None;
        }
        self.telemetry.state_error(
            StateError::Unavailable,
            &format!("redis: {e}; retrying in {pause:?} (the spool keeps accepting)"),
        );
        let wait = *pause;
        blocking(|| std::thread::sleep(wait));
        *pause = (*pause * 2).min(Duration::from_secs(5));
        Some(())
    }
}

/// Runs blocking I/O on the destination's task: on the multi-threaded
/// runtime tokio moves other tasks off this worker meanwhile.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn client(target: &RedisTarget) -> RedisResult<Client> {
    let mut info = target.url.as_str().into_connection_info()?;
    if let Some(p) = &target.password {
        let settings = info.redis_settings().clone().set_password(p.expose());
        info = info.set_redis_settings(settings);
    }
    Client::open(info)
}

/// `{version}` → written; `{version, entry}` → taken.
fn outcome(reply: &[Value]) -> Option<Outcome> {
    let version = match reply.first()? {
        Value::Int(v) => u64::try_from(*v).ok()?,
        _ => return None,
    };
    match reply.get(1) {
        None => Some(Outcome::Written(version)),
        Some(Value::BulkString(d)) => Some(Outcome::Taken(version, d.clone())),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_replies_are_read_as_written_or_taken() {
        assert_eq!(outcome(&[Value::Int(3)]), Some(Outcome::Written(3)));
        assert_eq!(
            outcome(&[Value::Int(2), Value::BulkString(b"x".to_vec())]),
            Some(Outcome::Taken(2, b"x".to_vec()))
        );
        assert_eq!(outcome(&[Value::Nil]), None);
    }
}

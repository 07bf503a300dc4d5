//! The store's SQL statements, with its schema's name in them.

/// How many queued events of each claimed order the claim reads.
pub(super) const PREFETCH: usize = 64;

/// The store's statements, with its schema's name in them.
#[derive(Debug)]
pub(super) struct Queries {
    pub(super) flows: String,
    pub(super) save_flow: String,
    pub(super) freeze_flow: String,
    pub(super) flow_version: String,
    pub(super) policies: String,
    pub(super) save_policy: String,
    pub(super) freeze_policy: String,
    pub(super) policy_version: String,
    pub(super) load: String,
    pub(super) create: String,
    pub(super) update: String,
    pub(super) create_fenced: String,
    pub(super) update_fenced: String,
    pub(super) revision: String,
    pub(super) enqueue: String,
    pub(super) claim: String,
    pub(super) inbox: String,
    pub(super) consume: String,
    pub(super) release: String,
    pub(super) maintain: String,
    pub(super) dead_letters: String,
    pub(super) purge: String,
    pub(super) journey: String,
    pub(super) live: String,
    pub(super) due: String,
    pub(super) next_due: String,
    pub(super) catalog_revision: String,
    pub(super) bump_catalog: String,
    pub(super) flow_rows: String,
    pub(super) policy_rows: String,
    pub(super) set_aside: String,
    pub(super) aside: String,
    pub(super) restore: String,
    pub(super) wake: String,
}

impl Queries {
    /// The statements on the tables of `schema`, a quoted identifier.
    pub(super) fn new(schema: &str) -> Self {
        // A commit, in one statement: the order's row written if its revision matches
        // (`$11`; a new order: inserted if absent), then the executions it carries upserted
        // (`$8`, `$9`: their `seq`s and rows) and its journal row inserted (`$10`, if any),
        // both only for an order row the first CTE wrote; the result is how many order rows
        // it wrote. The document (`$3`) is written only when the commit carries one. With a
        // fencing token (parameter `fence`), a first CTE checks that the token is still the
        // order's and renews the lease, the order is written only if it did, and a second
        // column says whether it did.
        let commit = |create: bool, fence: Option<usize>| {
            let (check, guard, result) = match fence {
                None => (String::new(), "", "SELECT count(*) FROM o"),
                Some(param) => (
                    format!(
                        "f AS (
                             UPDATE {schema}.work
                             SET lease_until = now() + lease_ms * interval '1 millisecond'
                             WHERE order_id = $1 AND fence = ${param}
                             RETURNING 1
                         ), "
                    ),
                    " AND EXISTS (SELECT 1 FROM f)",
                    "SELECT (SELECT count(*) FROM o), (SELECT count(*) FROM f)",
                ),
            };
            let write = if create {
                format!(
                    "INSERT INTO {schema}.orders
                         (id, revision, document, resume_at, live, next_wake, completed_at)
                     SELECT $1, $2, $3, $4, $5, $6, $7 WHERE true{guard}
                     ON CONFLICT (id) DO NOTHING
                     RETURNING id"
                )
            } else {
                format!(
                    "UPDATE {schema}.orders
                     SET revision = $2, document = COALESCE($3, document), resume_at = $4,
                         live = $5, next_wake = $6, completed_at = $7
                     WHERE id = $1 AND revision = $11{guard}
                     RETURNING id"
                )
            };
            format!(
                "WITH {check}o AS ({write}), x AS (
                     INSERT INTO {schema}.executions (order_id, seq, state)
                     SELECT o.id, e.seq, e.state
                     FROM o, unnest($8::bigint[], $9::bytea[]) AS e (seq, state)
                     ON CONFLICT (order_id, seq) DO UPDATE SET state = excluded.state
                 ), j AS (
                     INSERT INTO {schema}.journal (order_id, revision, entries)
                     SELECT o.id, $2, $10 FROM o WHERE $10::bytea IS NOT NULL
                 )
                 {result}"
            )
        };
        // `nextval` takes the sequence's name as a string literal.
        let fences = format!("'{}'", format!("{schema}.fences").replace('\'', "''"));
        Self {
            create: commit(true, None),
            update: commit(false, None),
            create_fenced: commit(true, Some(11)),
            update_fenced: commit(false, Some(12)),
            // The order is ready at once ($3: the earliest key); the notification goes out
            // when the transaction commits.
            enqueue: format!(
                "WITH i AS (
                     INSERT INTO {schema}.inbox (order_id, event) VALUES ($1, $2)
                     RETURNING seq
                 ), w AS (
                     INSERT INTO {schema}.work (order_id, ready_at, queued)
                     SELECT $1, $3, seq FROM i
                     ON CONFLICT (order_id) DO UPDATE
                     SET ready_at = $3,
                         queued = LEAST(work.queued, excluded.queued)
                 )
                 SELECT pg_notify($4, '')"
            ),
            // Ready ($1: the engine's now as a wake key), not held by a live lease; locked
            // rows are skipped, so concurrent claims take different orders. Lease times are
            // the database's.
            claim: format!(
                "WITH c AS (
                     SELECT order_id FROM {schema}.work
                     WHERE ready_at <= $1 AND (lease_until IS NULL OR lease_until < now())
                       AND NOT EXISTS (
                           SELECT 1 FROM {schema}.aside a WHERE a.order_id = work.order_id
                       )
                     ORDER BY ready_at, queued
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 ), u AS (
                     UPDATE {schema}.work w
                     SET owner = $3, fence = nextval({fences}), lease_ms = $4::bigint,
                         woken = false,
                         lease_until = now() + $4::bigint * interval '1 millisecond'
                     FROM c WHERE w.order_id = c.order_id
                     RETURNING w.order_id, w.fence
                 )
                 SELECT u.order_id, u.fence,
                        COALESCE(p.seqs, '{{}}'::bigint[]), COALESCE(p.events, '{{}}'::text[])
                 FROM u LEFT JOIN LATERAL (
                     SELECT array_agg(q.seq ORDER BY q.seq) AS seqs,
                            array_agg(q.event ORDER BY q.seq) AS events
                     FROM (
                         SELECT seq, event FROM {schema}.inbox i WHERE i.order_id = u.order_id
                         ORDER BY seq LIMIT {PREFETCH}
                     ) q
                 ) p ON true"
            ),
            inbox: format!(
                "SELECT w.fence, i.seq, i.event
                 FROM (SELECT fence FROM {schema}.work WHERE order_id = $1) w
                 LEFT JOIN LATERAL (
                     SELECT seq, event FROM {schema}.inbox WHERE order_id = $1
                     ORDER BY seq LIMIT $2
                 ) i ON true"
            ),
            consume: format!(
                "WITH d AS (
                     DELETE FROM {schema}.inbox
                     WHERE seq = $2 AND order_id = $1
                       AND EXISTS (SELECT 1 FROM {schema}.work WHERE order_id = $1 AND fence = $3)
                     RETURNING seq, order_id, event
                 ), x AS (
                     INSERT INTO {schema}.dead_letters (seq, order_id, event, reason)
                     SELECT seq, order_id, event, $4 FROM d WHERE $4::text IS NOT NULL
                 )
                 SELECT EXISTS (
                     SELECT 1 FROM {schema}.work WHERE order_id = $1 AND fence = $3
                 )"
            ),
            release: format!("SELECT {schema}.release_order($1, $2, $3)"),
            // Another instance's vacuum of the same table makes this one skip it.
            maintain: format!("VACUUM (SKIP_LOCKED, ANALYZE) {schema}.work, {schema}.inbox"),
            dead_letters: format!(
                "SELECT event, reason FROM {schema}.dead_letters WHERE order_id = $1 ORDER BY seq"
            ),
            flows: format!("SELECT json FROM {schema}.flows ORDER BY seq"),
            save_flow: format!(
                "INSERT INTO {schema}.flows (name, json) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET json = excluded.json"
            ),
            freeze_flow: format!(
                "INSERT INTO {schema}.flow_versions (name, version, json) VALUES ($1, $2, $3)
                 ON CONFLICT (name, version) DO NOTHING"
            ),
            flow_version: format!(
                "SELECT json FROM {schema}.flow_versions WHERE name = $1 AND version = $2"
            ),
            policies: format!("SELECT json FROM {schema}.policies ORDER BY seq"),
            save_policy: format!(
                "INSERT INTO {schema}.policies (name, json) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET json = excluded.json"
            ),
            freeze_policy: format!(
                "INSERT INTO {schema}.policy_versions (name, version, json) VALUES ($1, $2, $3)
                 ON CONFLICT (name, version) DO NOTHING"
            ),
            policy_version: format!(
                "SELECT json FROM {schema}.policy_versions WHERE name = $1 AND version = $2"
            ),
            // One statement, so one snapshot: the order's row, its executions and journal.
            load: format!(
                "SELECT o.id, o.revision, o.document, o.resume_at, o.state,
                     ARRAY(SELECT seq FROM {schema}.executions e WHERE e.order_id = o.id
                           ORDER BY seq),
                     ARRAY(SELECT state FROM {schema}.executions e WHERE e.order_id = o.id
                           ORDER BY seq),
                     ARRAY(SELECT revision FROM {schema}.journal j WHERE j.order_id = o.id
                           ORDER BY revision),
                     ARRAY(SELECT entries FROM {schema}.journal j WHERE j.order_id = o.id
                           ORDER BY revision)
                 FROM {schema}.orders o WHERE o.id = $1"
            ),
            revision: format!("SELECT revision FROM {schema}.orders WHERE id = $1"),
            // Rows from before schema 5 (an order whose state never decoded), then the
            // journal's.
            journey: format!(
                "SELECT $1::text,
                     ARRAY(SELECT json FROM {schema}.journeys WHERE order_id = $1 ORDER BY seq),
                     ARRAY(SELECT revision FROM {schema}.journal WHERE order_id = $1
                           ORDER BY revision),
                     ARRAY(SELECT entries FROM {schema}.journal WHERE order_id = $1
                           ORDER BY revision)"
            ),
            live: format!(
                "SELECT id FROM {schema}.orders o WHERE live
                 AND NOT EXISTS (SELECT 1 FROM {schema}.aside a WHERE a.order_id = o.id)
                 ORDER BY id"
            ),
            due: format!(
                "SELECT id FROM {schema}.orders o WHERE next_wake IS NOT NULL AND next_wake <= $1
                 AND NOT EXISTS (SELECT 1 FROM {schema}.aside a WHERE a.order_id = o.id)
                 ORDER BY next_wake, id LIMIT $2"
            ),
            next_due: format!(
                "SELECT next_wake FROM {schema}.orders o WHERE next_wake IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM {schema}.aside a WHERE a.order_id = o.id)
                 ORDER BY next_wake LIMIT 1"
            ),
            catalog_revision: format!("SELECT revision FROM {schema}.catalog"),
            bump_catalog: format!("UPDATE {schema}.catalog SET revision = revision + 1"),
            flow_rows: format!("SELECT name, json FROM {schema}.flows ORDER BY seq"),
            policy_rows: format!("SELECT name, json FROM {schema}.policies ORDER BY seq"),
            set_aside: format!(
                "INSERT INTO {schema}.aside (order_id, reason) VALUES ($1, $2)
                 ON CONFLICT (order_id) DO UPDATE SET reason = excluded.reason, set_at = now()"
            ),
            aside: format!("SELECT order_id, reason FROM {schema}.aside ORDER BY seq"),
            // Back from the list, and ready at once ($2: the earliest key).
            restore: format!(
                "WITH d AS (
                     DELETE FROM {schema}.aside WHERE order_id = $1 RETURNING order_id
                 ), w AS (
                     INSERT INTO {schema}.work (order_id, ready_at, woken)
                     SELECT order_id, $2, true FROM d
                     ON CONFLICT (order_id) DO UPDATE SET ready_at = $2, woken = true
                 )
                 SELECT count(*), pg_notify($3, '') FROM d"
            ),
            wake: format!(
                "WITH w AS (
                     INSERT INTO {schema}.work (order_id, ready_at, woken) VALUES ($1, $2, true)
                     ON CONFLICT (order_id) DO UPDATE SET ready_at = $2, woken = true
                 )
                 SELECT pg_notify($3, '')"
            ),
            // Completed orders ($1: the cutoff as a wake key), oldest first through the
            // partial index, none with pending work (a work-list row: queued events, a
            // timer, a lease). Rows locked by a commit in flight are skipped, and a row a
            // commit changed meanwhile is checked again once locked. The executions,
            // journal, journey, inbox and dead-letter rows go in the same statement.
            purge: format!(
                "WITH p AS (
                     SELECT id FROM {schema}.orders o
                     WHERE completed_at IS NOT NULL AND completed_at < $1
                       AND NOT EXISTS (SELECT 1 FROM {schema}.work w WHERE w.order_id = o.id)
                       AND NOT EXISTS (SELECT 1 FROM {schema}.aside a WHERE a.order_id = o.id)
                     ORDER BY completed_at, id
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 ), j AS (
                     DELETE FROM {schema}.journeys WHERE order_id IN (SELECT id FROM p)
                 ), e AS (
                     DELETE FROM {schema}.executions WHERE order_id IN (SELECT id FROM p)
                 ), l AS (
                     DELETE FROM {schema}.journal WHERE order_id IN (SELECT id FROM p)
                 ), i AS (
                     DELETE FROM {schema}.inbox WHERE order_id IN (SELECT id FROM p)
                 ), d AS (
                     DELETE FROM {schema}.dead_letters WHERE order_id IN (SELECT id FROM p)
                 ), o AS (
                     DELETE FROM {schema}.orders WHERE id IN (SELECT id FROM p)
                     RETURNING id, completed_at
                 )
                 SELECT id FROM o ORDER BY completed_at, id"
            ),
        }
    }
}

/// `name` as a quoted SQL identifier.
pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as a SQL string literal.
pub(super) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

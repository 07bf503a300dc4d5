//! `orderflow journey` on a PostgreSQL store: an order recorded by the library in a fresh
//! schema, read back by the tool (`--postgres URL` and `ORDERFLOW_PG_URL`), and a schema
//! the tool is pointed at but that does not exist stays absent: the tool only reads.
//! Needs `ORDERFLOW_PG_URL` (CI sets it); without it the test says so and passes.

#![cfg(all(feature = "cli", feature = "postgres"))]

mod common;

use assert_cmd::Command;
use common::fresh::FreshPostgres;
use orderflow::Event;

fn orderflow() -> Command {
    let mut cmd = Command::cargo_bin("orderflow").unwrap();
    cmd.env_remove("ORDERFLOW_PG_URL").env_remove("NO_COLOR");
    cmd
}

#[test]
fn journey_reads_an_order_from_postgres_without_writing() {
    let Some(fresh) = FreshPostgres::from_env("cli") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let schema = rt.block_on(async {
        let (store, schema) = fresh.open_named().await;
        let (engine, _, _) = common::lab_engine(store).await;
        common::publish_lab(&engine).await;
        engine
            .submit(Event::new_order(common::lab_order("PG-1", 10)))
            .await
            .unwrap();
        engine.settled("PG-1").await.unwrap();
        schema
    });
    let url = fresh.url().to_owned();

    let out = orderflow()
        .args(["journey", "--postgres", &url, "--schema", &schema, "PG-1"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("[Reference lab] Validate order lines"),
        "{text}"
    );
    assert!(text.contains("Send to Seattle"), "{text}");

    // The URL from the environment, the journey drawn and as JSON.
    let out = orderflow()
        .env("ORDERFLOW_PG_URL", &url)
        .args([
            "journey", "--schema", &schema, "PG-1", "--format", "mermaid",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("flowchart")
    );
    let out = orderflow()
        .env("ORDERFLOW_PG_URL", &url)
        .args(["journey", "--schema", &schema, "PG-1", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let journey: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(journey["executions"][0]["flow"], "Reference lab");

    // An order that is not there, and a schema that is not there: the command cannot run,
    // and the tool creates nothing.
    let out = orderflow()
        .args(["journey", "--postgres", &url, "--schema", &schema, "NOPE"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("order 'NOPE' is not in"), "{err}");
    let missing = format!("{schema}_missing");
    orderflow()
        .args(["journey", "--postgres", &url, "--schema", &missing, "PG-1"])
        .assert()
        .code(2);
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let rows = client
            .query(
                "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
                &[&missing],
            )
            .await
            .unwrap();
        assert!(rows.is_empty(), "the tool created schema {missing}");
        fresh.drop_all().await;
    });
}

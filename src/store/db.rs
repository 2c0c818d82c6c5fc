//! The connection pool: creating the database when missing, connecting, migrating, readiness.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

/// Pool settings.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

/// The connection pool, created and migrated.
#[derive(Clone, Debug)]
pub struct Database {
    pub pool: PgPool,
}

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Database {
    /// Creates the database when it is missing, connects, and applies migrations. Replicas
    /// starting together are safe: creation tolerates "already exists" and the migrator holds an
    /// advisory lock.
    pub async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .context("FH_DATABASE_URL is not a valid postgres URL")?
            // A replica frozen mid-transaction (holding a refresh lock, say) must not block the
            // others for long: PostgreSQL ends such a session. Our transactions wait on a
            // provider for at most its 10 s timeout.
            .options([("idle_in_transaction_session_timeout", "60s")]);
        create_database_if_missing(&options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(
                options
                    .clone()
                    .log_statements(tracing::log::LevelFilter::Trace),
            )
            .await
            .with_context(|| {
                format!(
                    "cannot connect to database {:?}",
                    options.get_database().unwrap_or("")
                )
            })?;
        MIGRATOR.run(&pool).await.context("applying migrations")?;
        Ok(Self { pool })
    }

    /// True when the database answers and every migration we know has been applied.
    pub async fn ready(&self) -> bool {
        let applied: Result<i64, _> =
            sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await;
        matches!(applied, Ok(n) if n as usize >= MIGRATOR.iter().count())
    }
}

async fn create_database_if_missing(options: &PgConnectOptions) -> anyhow::Result<()> {
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    // The database may not exist yet, so ask the maintenance database.
    let admin = options.clone().database("postgres");
    let mut conn = PgConnection::connect_with(&admin)
        .await
        .context("cannot connect to PostgreSQL (is it running? see README)")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        // Identifiers cannot be bound; quote it, doubling embedded quotes.
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // 42P04 duplicate_database: another replica won the race.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e).context("creating database"),
        }
    }
    conn.close().await.ok();
    Ok(())
}

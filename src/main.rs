//! `founderhouse-integrations`: parse the command line, set up logging, run the command.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use founderhouse_integrations::api::auth::mint_token;
use founderhouse_integrations::app::App;
use founderhouse_integrations::config::{Cli, Command, KeysCommand};
use founderhouse_integrations::domain::Role;
use founderhouse_integrations::secrets::{AadVersion, KeyRing};
use founderhouse_integrations::service::System;
use founderhouse_integrations::service::system::SealedTable;
use founderhouse_integrations::store::Database;
use founderhouse_integrations::telemetry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_logging(&cli.settings.log, &cli.settings.log_format)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings.into_config()?).await,
        Command::Migrate => {
            let config = cli.settings.into_config()?;
            Database::connect(config.database_url.expose(), &config.pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Token {
            workspace,
            role,
            sub,
            ttl,
        } => {
            let role: Role = role.parse().map_err(|()| {
                anyhow::anyhow!("--role must be owner, admin, member, viewer or service")
            })?;
            let config = cli.settings.into_config()?;
            let secret = config
                .jwt_secret
                .context("no HS256 secret configured (FH_JWT_SECRET); tokens for JWKS setups come from your identity provider")?;
            println!(
                "{}",
                mint_token(
                    &secret,
                    sub.unwrap_or_else(uuid::Uuid::new_v4),
                    workspace,
                    role,
                    ttl
                )?
            );
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Generate,
        } => {
            println!("{}", KeyRing::generate_entry());
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rewrap { batch },
        } => {
            let config = cli.settings.into_config()?;
            let db = Database::connect(config.database_url.expose(), &config.pool).await?;
            let active = config.keyring.active_id().as_str().to_owned();
            let system = System::new(db, Arc::new(config.keyring));
            let mut counts = Vec::new();
            for table in SealedTable::ALL {
                counts.push(format!(
                    "{} {}",
                    table.as_str(),
                    system.to_rewrap(table).await?
                ));
            }
            println!(
                "to rewrap under key {active} with aad v{}: {}",
                AadVersion::CURRENT.as_column(),
                counts.join(", ")
            );
            let report = system
                .rewrap(batch, |t| {
                    let unopenable = match t.unopenable {
                        0 => String::new(),
                        n => format!(", {n} could not be opened"),
                    };
                    println!(
                        "{}: rewrapped {}/{}{unopenable}",
                        t.table.as_str(),
                        t.rewrapped,
                        t.to_rewrap
                    );
                })
                .await?;
            for t in &report.tables {
                println!(
                    "{}: {} rewrapped, {} could not be opened, {} left",
                    t.table.as_str(),
                    t.rewrapped,
                    t.unopenable,
                    t.left
                );
            }
            // Rows that do not open stay as they are whatever we do; the log names each.
            let unopenable: u64 = report.tables.iter().map(|t| t.unopenable).sum();
            if unopenable > 0 {
                println!(
                    "{unopenable} row(s) could not be opened (key removed or value tampered with); the log names them"
                );
            }
            let left = report.left_movable();
            if left > 0 {
                anyhow::bail!(
                    "{left} row(s) are still to rewrap (locked by a concurrent rewrap?); run it again"
                );
            }
            Ok(())
        }
    }
}

async fn serve(config: founderhouse_integrations::config::Config) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    tracing::info!(grpc = %app.grpc_addr(), http = %app.http_addr(), "listening");
    let token = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        token.cancel();
    });
    app.run().await
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // Without a handler we can only wait forever; SIGTERM still works below.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

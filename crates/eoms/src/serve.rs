//! `eoms serve` and `eoms user add`: opening the configured store for the server, the demo
//! world, and the first admin of an empty instance.

use crate::config::{Backend, Config, redact};
use anyhow::{Context, Result, anyhow, bail};
use eoms_domain::ids::{FunctionRoleKey, OrgUnitId, UserId};
use eoms_domain::org::{DataScope, FunctionRole, OrgKind, OrgUnit, Permission, User};
use eoms_server::clock::{Clock, SystemClock};
use eoms_server::store::AnyStore;
use eoms_server::{App, ops};
use eoms_store::Store;
use eoms_store_postgres::PgStore;
use eoms_store_sqlite::SqliteStore;
use std::sync::Arc;

pub(crate) async fn open_store(cfg: &Config) -> Result<AnyStore> {
    Ok(match cfg.backend()? {
        Backend::Sqlite(path) => {
            AnyStore::Sqlite(SqliteStore::open(&path).with_context(|| format!("cannot open {}", path.display()))?)
        }
        Backend::Postgres(url) => AnyStore::Postgres(
            PgStore::connect(&url, None, cfg.pool_size)
                .await
                .with_context(|| format!("cannot connect to {}", redact(&url)))?,
        ),
    })
}

pub fn serve(cfg: &Config, demo: bool, css_sim: bool) -> Result<()> {
    ops::set_log_format(cfg.server.log_format);
    let rt = crate::db::runtime()?;
    rt.block_on(async {
        let store = open_store(cfg).await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let applied = store.migrate(clock.now()).await?;
        if !applied.is_empty() {
            eprintln!("migrated the database: {}", applied.join(", "));
        }
        if demo {
            if eoms_server::demo::seed(&store, clock.now()).await? {
                eprintln!("created the demo world");
            }
            print!("{}", eoms_server::demo::accounts());
        } else if store.directory().await?.users.is_empty() {
            eprintln!(
                "this instance has no users yet: create the first admin with `eoms user add ID --name NAME --admin`"
            );
        }
        let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.server.listen))?;
        let mut server = cfg.server.clone();
        if demo && server.subscribers.is_empty() {
            server.subscribers = eoms_server::demo::subscribers();
        }
        let app = App::open(store, server, clock, cfg.data_dir.clone()).await?;
        if css_sim {
            start_css_sim(&cfg.server.listen).await?;
        }
        println!("eoms serves on http://{} (API docs: http://{}/api/docs)", cfg.server.listen, cfg.server.listen);
        eoms_server::serve(app, listener, eoms_server::shutdown_signal()).await?;
        eprintln!("stopped");
        Ok(())
    })
}

/// Adds a user; with `admin`, also the `admin` function role (every permission, all data) if
/// it is missing, so that an empty instance gets its first administrator.
pub fn add_user(cfg: &Config, id: &str, name: &str, org: Option<&str>, roles: &[String], admin: bool) -> Result<()> {
    let password = match std::env::var("EOMS_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprint!("password for {id}: ");
            let mut p = String::new();
            std::io::stdin().read_line(&mut p).context("cannot read the password")?;
            p.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if eoms_server::auth::check_new_password(&password).is_err() {
        bail!("the password needs 8 to 256 characters");
    }
    let rt = crate::db::runtime()?;
    rt.block_on(async {
        let store = open_store(cfg).await?;
        let now = SystemClock.now();
        store.migrate(now).await?;
        let mut d = store.directory().await?;
        if d.units.is_empty() {
            d.units.push(OrgUnit {
                id: OrgUnitId::new("hq"),
                name: "总部".into(),
                name_en: "HQ".into(),
                kind: OrgKind::Hq,
                parent: None,
            });
        }
        if d.users.iter().any(|u| u.id.as_str() == id) {
            bail!("user '{id}' exists already");
        }
        let mut function_roles: Vec<FunctionRoleKey> = roles.iter().map(FunctionRoleKey::new).collect();
        if admin {
            if !d.function_roles.iter().any(|r| r.key.as_str() == "admin") {
                d.function_roles.push(FunctionRole {
                    key: FunctionRoleKey::new("admin"),
                    name: "系统管理员".into(),
                    permissions: [
                        Permission::CreateTicket,
                        Permission::Query,
                        Permission::Export,
                        Permission::Statistics,
                        Permission::Unmask,
                        Permission::Configure,
                        Permission::AdministerUsers,
                        Permission::ForceClose,
                    ]
                    .into_iter()
                    .collect(),
                    scope: DataScope::All,
                });
            }
            function_roles.push(FunctionRoleKey::new("admin"));
        }
        let org = org.map(OrgUnitId::new).unwrap_or_else(|| d.units[0].id.clone());
        d.users.push(User {
            id: UserId::new(id),
            name: name.into(),
            org,
            function_roles,
            active: true,
            email: None,
            mobile: None,
        });
        let checked = eoms_domain::Org::new(d).map_err(|e| anyhow!("{e}"))?;
        store.save_directory(checked.directory()).await?;
        let hash = eoms_server::auth::hash_password(password).await.map_err(|_| anyhow!("cannot hash the password"))?;
        store.set_password(&UserId::new(id), &hash).await?;
        eoms_server::demo::store_processes(&store, now).await?;
        println!("added user {id}{}", if admin { " (admin)" } else { "" });
        Ok(())
    })
}

/// The demo's simulated CSS for 山东 and 广东: receives on 127.0.0.1:18081 (where the demo's CSS
/// configuration sends) and files a complaint every 30 s in each province.
async fn start_css_sim(listen: &str) -> Result<()> {
    use eoms_server::css::sim::{Sim, SimConfig, file_at_rate};
    let base = format!("http://{listen}");
    let sd = Sim::new(SimConfig::demo(&base, "sd"));
    let gd = Sim::new(SimConfig { seed: 2, ..SimConfig::demo(&base, "gd") });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:18081")
        .await
        .context("cannot listen on 127.0.0.1:18081 for the CSS simulator")?;
    let app = sd.router().merge(gd.router());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    tokio::spawn(file_at_rate(sd, vec!["济南".into(), "青岛".into()], 1.0 / 30.0, None));
    tokio::spawn(file_at_rate(gd, vec!["广州".into(), "深圳".into()], 1.0 / 30.0, None));
    eprintln!("css-sim: simulated 山东 and 广东 CSS on http://127.0.0.1:18081, a complaint every 30 s each");
    Ok(())
}

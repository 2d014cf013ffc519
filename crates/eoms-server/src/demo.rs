//! The demo world of `eoms serve --demo`: HQ; 山东 with 济南 and 青岛; 广东 with 广州 and 深圳;
//! their departments, users for every role, handling groups, both processes and the
//! dictionaries. Every demo account has the password [`DEMO_PASSWORD`].

use crate::auth::hash_password;
use crate::store::AnyStore;
use eoms_domain::Org;
use eoms_store::{Dictionary, StorageError, Store, StoredProcess, Timestamp};

pub const MOBILE: &str = include_str!("../../../processes/mobile_complaint.toml");
pub const CUSTOMER: &str = include_str!("../../../processes/customer_complaint.toml");
pub const DEMO_ORG: &str = include_str!("../../../scenarios/demo_org.toml");
pub const DEMO_DICTIONARIES: &str = include_str!("../../../scenarios/demo_dictionaries.toml");
pub const DEMO_CSS: &str = include_str!("../../../scenarios/demo_css.toml");
pub const DEMO_PASSWORD: &str = "eoms-demo";

#[derive(serde::Deserialize)]
struct Dictionaries {
    dictionary: Vec<Dictionary>,
}

pub fn dictionaries() -> Result<Vec<Dictionary>, String> {
    toml::from_str::<Dictionaries>(DEMO_DICTIONARIES).map(|d| d.dictionary).map_err(|e| e.to_string())
}

/// The demo provinces' CSS interface configuration.
pub fn css_provinces() -> Result<Vec<eoms_store::CssProvince>, String> {
    Ok(crate::css::parse_file(DEMO_CSS)?
        .into_iter()
        .map(|p| eoms_store::CssProvince {
            province: p.province.clone(),
            body: serde_json::to_value(&p).unwrap_or_default(),
        })
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Invalid(String),
}

/// Stores the shipped process definitions that are not stored yet.
pub async fn store_processes<S: Store>(s: &S, now: Timestamp) -> Result<(), SeedError> {
    let stored = s.processes().await?;
    for src in [MOBILE, CUSTOMER] {
        let def = eoms_domain::compile(src).map_err(|d| SeedError::Invalid(format!("{d:?}")))?;
        if !stored.iter().any(|p| p.key == def.key.as_str() && p.version == def.version) {
            s.save_process(&StoredProcess {
                key: def.key.to_string(),
                version: def.version,
                source: src.to_string(),
                created_at: now,
            })
            .await?;
        }
    }
    Ok(())
}

/// Creates the demo world on an empty database; leaves a configured one alone. Returns whether
/// it created anything.
pub async fn seed(s: &AnyStore, now: Timestamp) -> Result<bool, SeedError> {
    if !s.directory().await?.units.is_empty() {
        return Ok(false);
    }
    let org = Org::from_toml(DEMO_ORG).map_err(|e| SeedError::Invalid(e.to_string()))?;
    s.save_directory(org.directory()).await?;
    store_processes(s, now).await?;
    s.save_dictionaries(&dictionaries().map_err(SeedError::Invalid)?).await?;
    s.save_css_provinces(&css_provinces().map_err(SeedError::Invalid)?).await?;
    // One hash for every demo account: their password is the same and printed anyway.
    let hash =
        hash_password(DEMO_PASSWORD.to_string()).await.map_err(|_| SeedError::Invalid("hashing failed".into()))?;
    for u in &org.directory().users {
        s.set_password(&u.id, &hash).await?;
    }
    Ok(true)
}

/// The demo accounts as a table for the terminal.
pub fn accounts() -> String {
    let Ok(org) = Org::from_toml(DEMO_ORG) else { return String::new() };
    let mut out = format!("demo accounts (password: {DEMO_PASSWORD}):\n");
    for u in &org.directory().users {
        let unit = org.unit(u.org.as_str()).map(|x| x.name.as_str()).unwrap_or("");
        let roles: Vec<&str> = u.function_roles.iter().map(|r| r.as_str()).collect();
        let groups: Vec<&str> = org.groups_of(&u.id).map(|g| g.name.as_str()).collect();
        out.push_str(&format!(
            "  {:<16} {:<10} {:<14} {:<16} {}\n",
            u.id.as_str(),
            u.name,
            unit,
            roles.join(","),
            groups.join(", ")
        ));
    }
    out
}

/// The demo's subscribers per region (for complaints per 10,000 subscribers), used when the
/// configuration names none.
pub fn subscribers() -> std::collections::BTreeMap<String, u64> {
    [
        ("sd", 62_000_000),
        ("sd.jn", 8_500_000),
        ("sd.qd", 9_800_000),
        ("gd", 150_000_000),
        ("gd.gz", 21_000_000),
        ("gd.sz", 23_000_000),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

//! `offset` and `limit` (TMF630 paging).

use crate::TmfError;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub offset: u64,
    pub limit: u32,
}

/// Reads `offset` (default 0) and `limit` (default 100, at most 1000; 0 is refused) from the
/// query parameters.
pub fn parse_paging(params: &[(String, String)]) -> Result<Paging, TmfError> {
    let mut p = Paging { offset: 0, limit: DEFAULT_LIMIT };
    for (k, v) in params {
        match k.as_str() {
            "offset" => {
                p.offset = v.trim().parse::<u64>().ok().filter(|o| *o <= 10_000_000).ok_or_else(|| {
                    TmfError::bad_request(
                        "invalid_parameter",
                        format!("offset must be a whole number from 0, not '{v}'"),
                    )
                })?;
            }
            "limit" => {
                p.limit = v.trim().parse::<u32>().ok().filter(|l| (1..=MAX_LIMIT).contains(l)).ok_or_else(|| {
                    TmfError::bad_request(
                        "invalid_parameter",
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}, not '{v}'"),
                    )
                })?;
            }
            _ => {}
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_without_parameters() {
        assert_eq!(parse_paging(&q(&[])).unwrap(), Paging { offset: 0, limit: DEFAULT_LIMIT });
    }

    #[test]
    fn reads_offset_and_limit() {
        assert_eq!(parse_paging(&q(&[("offset", "20"), ("limit", "5")])).unwrap(), Paging { offset: 20, limit: 5 });
    }

    #[test]
    fn refuses_bad_values() {
        for (k, v) in
            [("limit", "0"), ("limit", "-1"), ("limit", "x"), ("limit", "1001"), ("offset", "-3"), ("offset", "")]
        {
            let e = parse_paging(&q(&[(k, v)])).unwrap_err();
            assert_eq!(e.status, 400, "{k}={v}");
        }
    }
}

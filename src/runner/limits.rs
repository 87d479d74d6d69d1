//! The resource limits a run actually gets: the pipeline's own hard limits, else
//! `DEFAULT_CPU_LIMIT` / `DEFAULT_MEM_LIMIT` (Fast-Flow: "Standard-Limits werden
//! verwendet, falls konfiguriert"). Soft limits are only ever the pipeline's.

use crate::config::Config;
use crate::pipelines::metadata::ResourceLimits;

/// Limits in force, and which hard limits came from the defaults.
#[derive(Debug, Clone, Default)]
pub struct EffectiveLimits {
    pub limits: ResourceLimits,
    pub cpu_from_default: bool,
    pub mem_from_default: bool,
}

pub fn effective(own: &ResourceLimits, config: &Config) -> EffectiveLimits {
    let mut limits = own.clone();
    let cpu_from_default = limits.cpu_hard_limit.is_none() && config.default_cpu_limit.is_some();
    if cpu_from_default {
        limits.cpu_hard_limit = config.default_cpu_limit;
    }
    let mem_from_default = limits.mem_hard_limit.is_none() && config.default_mem_limit.is_some();
    if mem_from_default {
        limits.mem_hard_limit = config.default_mem_limit.clone();
    }
    EffectiveLimits {
        limits,
        cpu_from_default,
        mem_from_default,
    }
}

/// The limits to give a run's container: [`effective`], then fitted to the engine
/// host (a `DEFAULT_CPU_LIMIT` above the host's CPUs would make Docker refuse it).
pub fn for_run(
    own: &ResourceLimits,
    config: &Config,
    host: Option<crate::pipelines::HostResources>,
) -> ResourceLimits {
    let mut limits = effective(own, config).limits;
    if let Some(host) = host {
        let mut warnings = Vec::new();
        crate::pipelines::host::fit_to_host(&mut limits, &host, "", &mut warnings);
        for w in warnings {
            tracing::warn!("{w}");
        }
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipelines::metadata::parse_metadata;

    #[test]
    fn defaults_fill_only_missing_hard_limits() {
        let vars = std::collections::HashMap::from([
            ("DEFAULT_CPU_LIMIT".to_string(), "1".to_string()),
            ("DEFAULT_MEM_LIMIT".to_string(), "256m".to_string()),
        ]);
        let config = Config::from_vars(&vars).unwrap();
        let own = parse_metadata(r#"{"mem_hard_limit": "1g", "cpu_soft_limit": 0.5}"#)
            .metadata
            .limits;
        let e = effective(&own, &config);
        assert_eq!(e.limits.cpu_hard_limit, Some(1.0));
        assert!(e.cpu_from_default && !e.mem_from_default);
        assert_eq!(e.limits.mem_hard_limit.unwrap().bytes, 1 << 30);
        assert_eq!(e.limits.cpu_soft_limit, Some(0.5));
        let none = effective(
            &ResourceLimits::default(),
            &Config::from_vars(&Default::default()).unwrap(),
        );
        assert_eq!(none.limits, ResourceLimits::default());
    }
}

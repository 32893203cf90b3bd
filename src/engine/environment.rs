use crate::results::Environment;

/// CPU flags worth knowing when comparing INT8 speed across machines.
const INTERESTING_FLAGS: &[&str] = &[
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_int8",
    "amx_bf16",
    "sse4_2",
];

pub fn environment(threads: usize) -> Environment {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let flags_line = field("flags").unwrap_or_default();
    let flags = flags_line.split_whitespace().collect::<Vec<_>>();
    let rt = crate::runtime::info();
    Environment {
        cpu_model: field("model name").unwrap_or_else(|| "unknown".into()),
        cpu_flags: INTERESTING_FLAGS
            .iter()
            .filter(|f| flags.contains(f))
            .map(|f| f.to_string())
            .collect(),
        cores: crate::runtime::default_threads(),
        threads,
        ort_version: rt.map_or("not loaded".into(), |r| r.version.clone()),
        ort_library: rt.map_or(String::new(), |r| r.library.display().to_string()),
        quantbench_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: option_env!("QUANTBENCH_GIT_COMMIT")
            .unwrap_or("unknown")
            .into(),
        git_dirty: option_env!("QUANTBENCH_GIT_DIRTY") == Some("true"),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
    }
}

//! Each rule of the container policy refuses the container that breaks it, and
//! the containers Fast-Flow builds itself pass.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use bollard::models::{ContainerCreateBody, DeviceMapping, HostConfig, Mount};

use super::*;
use crate::pipelines::Pipeline;
use crate::pipelines::metadata::parse_metadata;
use crate::runner::container_spec::{RunContext, build};

struct Setup {
    _dir: tempfile::TempDir,
    config: Config,
    pipeline: Pipeline,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let pipelines = root.join("pipelines");
    std::fs::create_dir_all(pipelines.join("etl")).unwrap();
    std::fs::write(pipelines.join("etl/main.py"), "print(1)\n").unwrap();
    let ca = root.join("ca.crt");
    std::fs::write(&ca, "not really a certificate\n").unwrap();
    let mut config = Config::from_vars(&HashMap::new()).unwrap();
    config.data_dir = root.join("data");
    config.pipelines_dir = pipelines.clone();
    config.uv_cache_dir = root.join("data/uv_cache");
    config.worker_ca_bundle = Some(ca);
    let pipeline = Pipeline {
        name: "etl".into(),
        dir: pipelines.join("etl"),
        metadata_file: None,
        has_requirements: false,
        requirements: None,
        metadata: parse_metadata("{}").metadata,
        errors: vec![],
        warnings: vec![],
        revision: None,
    };
    Setup {
        _dir: dir,
        config,
        pipeline,
    }
}

fn body(s: &Setup) -> ContainerCreateBody {
    let env = BTreeMap::new();
    let ctx = RunContext {
        run_id: "r1",
        instance_id: "i1",
        run_env: &env,
        user: "1001:1001",
        image: "img",
        limits: &s.pipeline.metadata.limits,
    };
    build(&s.config, &s.pipeline, &ctx)
}

fn refused(s: &Setup, change: impl FnOnce(&mut ContainerCreateBody)) -> String {
    let mut b = body(s);
    change(&mut b);
    match check(&b, &MountRoots::from_config(&s.config)) {
        Err(PolicyViolation(why)) => why,
        Ok(()) => panic!("the policy let this container through: {:?}", b.host_config),
    }
}

fn host(b: &mut ContainerCreateBody) -> &mut HostConfig {
    b.host_config.as_mut().unwrap()
}

#[test]
fn fastflows_own_container_passes() {
    let s = setup();
    check(&body(&s), &MountRoots::from_config(&s.config)).unwrap();
}

#[test]
fn privileges_are_refused() {
    let s = setup();
    assert!(refused(&s, |b| host(b).privileged = Some(true)).contains("privileged"));
    assert!(
        refused(&s, |b| host(b).cap_add = Some(vec!["SYS_ADMIN".into()])).contains("SYS_ADMIN")
    );
    assert!(refused(&s, |b| host(b).cap_drop = None).contains("dropped"));
    assert!(refused(&s, |b| host(b).security_opt = None).contains("no-new-privileges"));
    let why = refused(&s, |b| {
        host(b).security_opt = Some(vec![
            "no-new-privileges:true".into(),
            "seccomp=unconfined".into(),
        ])
    });
    assert!(why.contains("seccomp=unconfined"), "{why}");
    assert!(refused(&s, |b| host(b).readonly_rootfs = Some(false)).contains("writable"));
    let device = DeviceMapping {
        path_on_host: Some("/dev/sda".into()),
        path_in_container: Some("/dev/sda".into()),
        cgroup_permissions: Some("rwm".into()),
    };
    assert!(refused(&s, |b| host(b).devices = Some(vec![device])).contains("devices"));
    let volume = Mount {
        source: Some("/".into()),
        target: Some("/host".into()),
        ..Default::default()
    };
    assert!(refused(&s, |b| host(b).mounts = Some(vec![volume])).contains("mounts"));
}

#[test]
fn root_users_are_refused() {
    let s = setup();
    for user in ["", "0", "root", "0:0", "ROOT:1001"] {
        let why = refused(&s, |b| b.user = Some(user.into()));
        assert!(why.contains("root"), "{user}: {why}");
    }
    assert!(refused(&s, |b| b.user = None).contains("root"));
}

#[test]
fn shared_namespaces_are_refused() {
    let s = setup();
    for mode in ["host", "HOST", "container:abc"] {
        assert!(refused(&s, |b| host(b).network_mode = Some(mode.into())).contains("namespace"));
        assert!(refused(&s, |b| host(b).pid_mode = Some(mode.into())).contains("PID"));
        assert!(refused(&s, |b| host(b).ipc_mode = Some(mode.into())).contains("IPC"));
    }
    assert!(refused(&s, |b| host(b).uts_mode = Some("host".into())).contains("UTS"));
    assert!(refused(&s, |b| host(b).userns_mode = Some("host".into())).contains("user"));
    for ok in ["bridge", "none", "etl-net"] {
        let mut b = body(&s);
        host(&mut b).network_mode = Some(ok.into());
        check(&b, &MountRoots::from_config(&s.config)).unwrap();
    }
}

#[test]
fn only_the_four_known_bind_mounts_pass() {
    let s = setup();
    let roots = &s.config;
    let add = |bind: String| {
        move |b: &mut ContainerCreateBody| host(b).binds.as_mut().unwrap().push(bind)
    };
    for bind in [
        "/:/host:ro".to_string(),
        "/var/run/docker.sock:/var/run/docker.sock:rw".to_string(),
        format!("{}:/app:rw", s.pipeline.dir.display()),
        format!("{}:/app:ro", roots.pipelines_dir.display()),
        format!("{}/../..:/app:ro", s.pipeline.dir.display()),
        format!("{}:/cache/uv:rw", roots.data_dir.display()),
        format!(
            "{}:/etc/fastflow/ca-bundle.crt:ro",
            roots.data_dir.display()
        ),
        "/etc:/app:ro".to_string(),
        "relative:/app:ro".to_string(),
        "nocolon".to_string(),
    ] {
        let why = refused(&s, add(bind.clone()));
        assert!(why.contains("bind mount"), "{bind}: {why}");
    }
}

#[test]
fn a_symlinked_pipeline_folder_leading_outside_is_refused() {
    let s = setup();
    let outside = tempfile::tempdir().unwrap();
    let link: PathBuf = s.config.pipelines_dir.join("escape");
    std::os::unix::fs::symlink(outside.path(), &link).unwrap();
    let why = refused(&s, |b| {
        host(b).binds.as_mut().unwrap()[0] = format!("{}:/app:ro", link.display());
    });
    assert!(why.contains("escape"), "{why}");
}

#[test]
fn the_network_setting_is_checked_when_the_config_loads() {
    for bad in ["host", "container:db"] {
        let vars = HashMap::from([("WORKER_NETWORK".to_string(), bad.to_string())]);
        let err = Config::from_vars(&vars).unwrap_err();
        assert_eq!(err.var, "WORKER_NETWORK");
        assert!(err.reason.contains("namespace"), "{}", err.reason);
    }
}

use super::*;
use crate::gitsync::remote::origin;
use crate::gitsync::{generate_deploy_key, public_key_of};

fn cipher() -> Cipher {
    Cipher::new(&SecretString::new(fernet::Fernet::generate_key())).unwrap()
}

fn change(url: &str) -> RepoConfigChange {
    RepoConfigChange {
        repo_url: Some(url.into()),
        ..Default::default()
    }
}

#[test]
fn environment_wins_field_by_field_and_credentials_as_one() {
    let env = GitEnv {
        repo_url: Some(SecretString::new("https://env/r.git")),
        token: Some(SecretString::new("env-token")),
        ..GitEnv::default()
    };
    let stored = GitEnv {
        repo_url: Some(SecretString::new("https://stored/r.git")),
        branch: Some("dev".into()),
        deploy_key: Some(SecretString::new("stored-key")),
        webhook_secret: Some(SecretString::new("stored-secret")),
        ..GitEnv::default()
    };
    let m = merged(&env, &stored);
    assert_eq!(m.repo_url.unwrap().expose(), "https://env/r.git");
    assert_eq!(m.branch.as_deref(), Some("dev"));
    assert_eq!(m.token.unwrap().expose(), "env-token");
    assert!(
        m.deploy_key.is_none(),
        "an env token is never mixed with a stored key"
    );
    assert_eq!(m.webhook_secret.unwrap().expose(), "stored-secret");
    assert_eq!(set_by_environment(&env), ["repo_url", "credentials"]);
}

#[test]
fn credentials_are_kept_replaced_and_forgotten_as_the_url_kind_says() {
    let c = cipher();
    let env = GitEnv::default();
    let mut with_token = change("https://host/r.git");
    with_token.token = Some("tok-123".into());
    let s = changed(&env, None, &with_token, &c).unwrap();
    assert_ne!(s.token_encrypted.as_deref(), Some("tok-123"));
    assert_eq!(
        c.decrypt(s.token_encrypted.as_deref().unwrap())
            .unwrap()
            .expose(),
        "tok-123"
    );
    // Left out: kept.
    let kept = changed(&env, Some(s.clone()), &change("https://host/r.git"), &c).unwrap();
    assert_eq!(kept.token_encrypted, s.token_encrypted);
    // An SSH URL forgets the token; a new key replaces it.
    let (private, public) = generate_deploy_key().unwrap();
    let mut with_key = change("git@host:o/r.git");
    with_key.deploy_key = Some(private.expose().into());
    let k = changed(&env, Some(s.clone()), &with_key, &c).unwrap();
    assert!(k.token_encrypted.is_none());
    let key = c
        .decrypt(k.deploy_key_encrypted.as_deref().unwrap())
        .unwrap();
    assert_eq!(public_key_of(&key).as_deref(), Some(public.as_str()));
    assert!(public.starts_with("ssh-ed25519 ") && public.ends_with("fastflow-deploy-key"));
    let ssh_only = changed(&env, Some(s), &change("git@host:o/r.git"), &c).unwrap();
    assert!(ssh_only.token_encrypted.is_none());
    // Removed on request.
    let mut remove = change("git@host:o/r.git");
    remove.remove_credentials = true;
    assert!(
        changed(&env, Some(k), &remove, &c)
            .unwrap()
            .deploy_key_encrypted
            .is_none()
    );
}

#[test]
fn a_url_set_by_the_environment_is_not_stored_again() {
    let c = cipher();
    let env = GitEnv {
        repo_url: Some(SecretString::new("https://env/r.git")),
        ..GitEnv::default()
    };
    let same = changed(&env, None, &change("https://env/r.git"), &c).unwrap();
    assert!(same.repo_url.is_none());
    let other = changed(&env, None, &change("https://other/r.git"), &c).unwrap_err();
    assert!(matches!(other, ChangeProblem::SetByEnvironment(m) if m.contains("GIT_REPO_URL")));
}

#[test]
fn the_environments_own_branch_is_accepted_and_another_refused() {
    let c = cipher();
    let env = GitEnv {
        branch: Some("main".into()),
        ..GitEnv::default()
    };
    let mut same = change("https://host/r.git");
    same.branch = Some("main".into());
    assert!(changed(&env, None, &same, &c).unwrap().branch.is_none());
    same.branch = Some("dev".into());
    let refused = changed(&env, None, &same, &c).unwrap_err();
    assert!(matches!(refused, ChangeProblem::SetByEnvironment(m) if m.contains("GIT_BRANCH")));
}

#[test]
fn credentials_stay_with_their_host_and_urls_carry_none() {
    let c = cipher();
    let env = GitEnv::default();
    let mut with_token = change("https://git.example.com/o/r.git");
    with_token.token = Some("tok".into());
    let stored = changed(&env, None, &with_token, &c).unwrap();
    // Same host, other repository: kept. Other host, other scheme or port: dropped.
    let same = changed(
        &env,
        Some(stored.clone()),
        &change("https://git.example.com/o/other.git"),
        &c,
    );
    assert!(same.unwrap().token_encrypted.is_some());
    for elsewhere in [
        "https://evil.example.net/o/r.git",
        "http://git.example.com/o/r.git",
        "https://git.example.com:8443/o/r.git",
    ] {
        let moved = changed(&env, Some(stored.clone()), &change(elsewhere), &c).unwrap();
        assert!(moved.token_encrypted.is_none(), "{elsewhere}");
    }
    // A new token typed with the new host is stored for it.
    let mut typed = change("https://evil.example.net/o/r.git");
    typed.token = Some("tok2".into());
    assert!(
        changed(&env, Some(stored), &typed, &c)
            .unwrap()
            .token_encrypted
            .is_some()
    );
    assert_eq!(
        origin("git@github.com:o/r.git"),
        origin("ssh://git@github.com/o/r.git")
    );
    for bad in [
        "ssh://user:pw@host/r.git",
        "ssh://user%3Apw@host/r.git",
        "https://host/r.git?access_token=x",
        "https://host/r.git#frag",
    ] {
        assert!(changed(&env, None, &change(bad), &c).is_err(), "{bad}");
    }
    // Environment credentials never go to a URL stored from the page.
    let env_token = GitEnv {
        token: Some(SecretString::new("env-tok")),
        ..GitEnv::default()
    };
    let stored_url = GitEnv {
        repo_url: Some(SecretString::new("https://b.example/r.git")),
        ..GitEnv::default()
    };
    assert!(merged(&env_token, &stored_url).token.is_none());
    assert!(!set_by_environment(&env_token).contains(&"credentials"));
}

#[test]
fn a_stored_apps_ids_sent_back_by_the_form_are_no_new_credential() {
    let c = cipher();
    let env = GitEnv::default();
    let mut app = change("https://github.com/o/r.git");
    app.github_app_id = Some("1".into());
    app.github_app_installation_id = Some("2".into());
    app.github_app_private_key = Some("pem".into());
    let stored = changed(&env, None, &app, &c).unwrap();
    let mut token = change("https://github.com/o/r.git");
    token.github_app_id = Some("1".into());
    token.github_app_installation_id = Some("2".into());
    token.token = Some("tok".into());
    let switched = changed(&env, Some(stored.clone()), &token, &c).unwrap();
    assert!(switched.token_encrypted.is_some() && switched.github_app_id.is_none());
    token.token = None;
    token.remove_credentials = true;
    let removed = changed(&env, Some(stored), &token, &c).unwrap();
    assert!(removed.github_app_id.is_none() && removed.github_app_private_key_encrypted.is_none());
}

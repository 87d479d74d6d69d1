//! Sending one e-mail over SMTP with lettre: implicit TLS, STARTTLS (required
//! or when offered) or plain, optional login, an extra trusted CA, and a
//! bounded time for the whole exchange.

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message as Mail, Tokio1Executor};

use super::SendError;
use super::settings::Effective;
use crate::config::notify::SmtpTls;

/// Connecting, greeting and each SMTP command must answer within this time.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends `subject`/`text` to `recipients` with the settings in force.
pub async fn send(
    settings: &Effective,
    recipients: &[String],
    subject: &str,
    text: String,
) -> Result<(), SendError> {
    if let Some(why) = settings.email_unready() {
        return Err(SendError::permanent(why));
    }
    let (Some(host), Some(from)) = (&settings.smtp_host, &settings.smtp_from) else {
        return Err(SendError::permanent("SMTP_HOST and SMTP_FROM are required"));
    };
    if recipients.is_empty() {
        return Err(SendError::permanent(
            "no recipients (EMAIL_RECIPIENTS, or the pipeline's notify.email)",
        ));
    }
    let from: Mailbox = from
        .parse()
        .map_err(|_| SendError::permanent(format!("SMTP_FROM `{from}` is not an address")))?;
    let mut mail = Mail::builder()
        .from(from)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for r in recipients {
        let to: Mailbox = r
            .parse()
            .map_err(|_| SendError::permanent(format!("`{r}` is not an e-mail address")))?;
        mail = mail.to(to);
    }
    let mail = mail
        .body(text)
        .map_err(|e| SendError::permanent(format!("cannot build the e-mail: {e}")))?;
    let transport = transport(settings, host)?;
    match tokio::time::timeout(SMTP_TIMEOUT * 3, transport.send(mail)).await {
        Err(_) => Err(SendError::retry(format!(
            "the SMTP server {host}:{} did not finish within {} s",
            settings.smtp_port,
            (SMTP_TIMEOUT * 3).as_secs()
        ))),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(smtp_error(&e, host, settings.smtp_port)),
    }
}

fn transport(
    settings: &Effective,
    host: &str,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let tls_params = || -> Result<TlsParameters, SendError> {
        let mut b = TlsParameters::builder(host.to_string());
        if let Some(path) = &settings.smtp_ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                SendError::permanent(format!("SMTP_CA_FILE {}: {e}", path.display()))
            })?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                SendError::permanent(format!(
                    "SMTP_CA_FILE {} is not a PEM certificate: {e}",
                    path.display()
                ))
            })?;
            b = b.add_root_certificate(cert);
        }
        b.build_native()
            .map_err(|e| SendError::permanent(format!("TLS set-up: {e}")))
    };
    let tls = match settings.smtp_tls {
        SmtpTls::Tls => Tls::Wrapper(tls_params()?),
        SmtpTls::Starttls => Tls::Required(tls_params()?),
        SmtpTls::Opportunistic => Tls::Opportunistic(tls_params()?),
        SmtpTls::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(settings.smtp_port)
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT));
    if let (Some(user), Some(password)) = (&settings.smtp_user, &settings.smtp_password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose().to_string(),
        ));
    }
    Ok(builder.build())
}

/// A lettre error as one line; a server's 5xx answer or a refused login will
/// not change by trying again, anything else (4xx, the network) may.
fn smtp_error(e: &lettre::transport::smtp::Error, host: &str, port: u16) -> SendError {
    let text = format!("SMTP {host}:{port}: {e}");
    // A refusal (5xx) and our own client's errors (e.g. an address it cannot
    // send) do not change by trying again.
    if e.is_permanent() || e.is_client() {
        SendError::permanent(text)
    } else {
        SendError::retry(text)
    }
}

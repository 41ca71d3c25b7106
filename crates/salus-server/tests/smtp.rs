//! The SMTP mailer against a real SMTP server (mailin) that the test starts on loopback.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use salus_domain::account::{Mailer, OutgoingEmail};
use salus_server::smtp::{SmtpMailer, SmtpSecurity, SmtpSettings};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Inbox {
    recipients: Arc<Mutex<Vec<String>>>,
    data: Arc<Mutex<Vec<u8>>>,
}

impl mailin_embedded::Handler for Inbox {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> mailin_embedded::response::Response {
        self.recipients.lock().unwrap().extend(to.iter().cloned());
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.lock().unwrap().extend_from_slice(buf);
        Ok(())
    }
}

#[tokio::test]
async fn delivers_plain_text_mail_to_a_real_smtp_server() {
    let inbox = Inbox::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = mailin_embedded::Server::new(inbox.clone());
    server.with_name("smtp.test").with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });

    let mailer = SmtpMailer::new(&SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "Salus <no-reply@salus.test>".into(),
    })
    .unwrap();
    mailer
        .send(OutgoingEmail {
            to: salus_domain::text::Email::parse("ann@example.org").unwrap(),
            subject: "Confirm your email address".into(),
            body: "Open this link: http://127.0.0.1/verify?token=abc".into(),
        })
        .await
        .unwrap();

    assert_eq!(
        *inbox.recipients.lock().unwrap(),
        vec!["ann@example.org".to_owned()]
    );
    let data = String::from_utf8(inbox.data.lock().unwrap().clone()).unwrap();
    assert!(
        data.contains("Subject: Confirm your email address"),
        "{data}"
    );
    assert!(data.contains("From: Salus <no-reply@salus.test>"), "{data}");
    assert!(data.contains("Content-Type: text/plain"), "{data}");
    assert!(data.contains("verify?token=abc"), "{data}");
}

#[tokio::test]
async fn an_unreachable_relay_is_a_mail_error_not_a_panic() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mailer = SmtpMailer::new(&SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "no-reply@salus.test".into(),
    })
    .unwrap();
    let sent = mailer
        .send(OutgoingEmail {
            to: salus_domain::text::Email::parse("ann@example.org").unwrap(),
            subject: "x".into(),
            body: "y".into(),
        })
        .await;
    assert_eq!(sent, Err(salus_domain::account::MailError));
}

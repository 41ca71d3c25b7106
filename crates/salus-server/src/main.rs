//! `salus`: serve the portal, import clinical data, manage organisations.
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool reports to its operator on stdout"
)]

use anyhow::Context;
use clap::{Parser, Subcommand};
use salus_domain::organization::{
    Organization, OrganizationRepository, PortalFeature, ReleasePolicy,
};
use salus_domain::text::{OrgName, Slug};
use salus_domain::{Clock, OrganizationId, SystemClock};
use salus_server::config::{Config, open_store};
use salus_server::{demo, importer, telemetry};
use salus_store::UuidV7Ids;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "salus",
    version,
    about = "Salus, an open-source patient portal"
)]
struct Cli {
    /// Config file (TOML). Default: $SALUS_CONFIG, else ./salus.toml when it exists.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the portal (the default command).
    Serve {
        /// Seed demo organisations and patients first if the database has no organisation.
        #[arg(long)]
        demo: bool,
    },
    /// Import FHIR R4 bundles (a file, or every *.json in a folder).
    Import {
        path: PathBuf,
        /// Slug of the organisation to import into (needed when there are several).
        #[arg(long)]
        org: Option<String>,
        /// The data comes from another organisation: records show "from an outside organisation".
        #[arg(long)]
        outside: bool,
    },
    /// Seed demo data (idempotent).
    Seed {
        /// Synthetic patients to add.
        #[arg(long, default_value_t = 20)]
        patients: u32,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Administration: staff accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Bill pay.
    #[command(subcommand)]
    Billing(BillingCommand),
}

#[derive(Subcommand)]
enum BillingCommand {
    /// Settle payments and refunds left without the processor's answer (a timeout, a crash)
    /// by asking the processor what became of them. The server does this on its own every
    /// minute for those pending longer than `reconcile_after_secs`.
    Reconcile {
        /// Settle those pending for at least this many seconds (0: all; only when no server
        /// is charging meanwhile).
        #[arg(long)]
        older_than_secs: Option<u32>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exits with status 1 and names the first broken entry.
    Verify,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a staff account with a generated password and authenticator secret (printed once).
    CreateStaff {
        /// Slug of the staff member's organisation.
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        given_name: String,
        #[arg(long)]
        family_name: String,
        /// clinician, front_desk, billing or organization_admin
        #[arg(long)]
        role: String,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organisation.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        /// Comma-separated: records,messaging,scheduling,bill_pay,proxy_access
        #[arg(long, value_delimiter = ',', default_value = "records")]
        features: Vec<String>,
        /// The number patients call, shown to patients waiting for the clinic.
        #[arg(long)]
        phone: Option<String>,
        /// The IANA time zone dates and times are shown in, e.g. America/New_York.
        #[arg(long, default_value = "UTC")]
        time_zone: String,
    },
    /// List organisations.
    List,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = Config::load(cli.config.as_deref())?;
    telemetry::init(&cfg);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&cfg).await?;
    match cli.command.unwrap_or(Command::Serve { demo: false }) {
        Command::Serve { demo } => {
            if demo {
                if store.list().await?.is_empty() {
                    let opts = seed_options(&cfg, cfg.demo_patients);
                    let report = demo::seed(&store, &opts, clock.clone()).await?;
                    tracing::info!(?report, "demo data seeded");
                }
                demo_accounts(&cfg, &store, clock).await?;
            }
            serve(&cfg, store).await
        }
        Command::Import { path, org, outside } => {
            let org = importer::target_org(&store, org.as_deref()).await?;
            for r in importer::import_path(&store, &org, &path, outside, clock).await? {
                println!("{}", importer::summary(&r));
            }
            Ok(())
        }
        Command::Seed { patients } => {
            let report = demo::seed(&store, &seed_options(&cfg, patients), clock).await?;
            println!("{report:?}");
            Ok(())
        }
        Command::Migrate => {
            println!("migrations applied");
            Ok(())
        }
        Command::Billing(BillingCommand::Reconcile { older_than_secs }) => {
            let billing = salus_server::app::api_state(&store, &cfg, clock)?.billing;
            let age = older_than_secs.unwrap_or(cfg.reconcile_after_secs);
            let report = billing
                .reconcile(chrono::Duration::seconds(i64::from(age)))
                .await?;
            println!(
                "settled {} payments and refunds; {} still without an answer",
                report.settled, report.still_pending
            );
            Ok(())
        }
        Command::Audit(AuditCommand::Verify) => {
            if salus_server::audit::verify(&store).await? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        Command::Org(OrgCommand::Create {
            slug,
            name,
            features,
            phone,
            time_zone,
        }) => {
            let features = features
                .iter()
                .map(|f| {
                    PortalFeature::from_code(f.trim())
                        .with_context(|| format!("unknown feature {f:?}"))
                })
                .collect::<anyhow::Result<_>>()?;
            let org = Organization {
                id: OrganizationId::generate(&UuidV7Ids),
                name: OrgName::parse(&name).context("invalid --name")?,
                slug: Slug::parse(&slug).context("invalid --slug (use a-z, 0-9 and -)")?,
                features,
                release_policy: ReleasePolicy::default(),
                phone: phone
                    .as_deref()
                    .map(salus_domain::text::Phone::parse)
                    .transpose()
                    .context("invalid --phone")?,
                time_zone: time_zone.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "unknown --time-zone {time_zone:?} (use an IANA name such as Europe/Berlin)"
                    )
                })?,
                guardian_policy: salus_domain::organization::GuardianPolicy::default(),
            };
            store
                .create(&org)
                .await
                .context("cannot create the organisation (is the slug taken?)")?;
            println!("created {}", org.slug.as_str());
            Ok(())
        }
        Command::Admin(AdminCommand::CreateStaff {
            org,
            email,
            given_name,
            family_name,
            role,
        }) => {
            let org = importer::target_org(&store, Some(&org)).await?;
            let role = salus_domain::account::StaffRole::from_code(&role)
                .context("--role must be clinician, front_desk, billing or organization_admin")?;
            let staff = salus_domain::account::NewStaff {
                email: salus_domain::text::Email::parse(&email).context("invalid --email")?,
                name: salus_domain::patient::PersonName::new(&given_name, &family_name)
                    .context("invalid name")?,
                role,
                organization: org.id,
                password: salus_domain::account::SecretText::new(
                    salus_server::adapters::OsSecrets.new_token_for_demo(),
                ),
            };
            let password = staff.password.expose().to_owned();
            let auth = salus_server::app::api_state(&store, &cfg, Arc::new(SystemClock))?.auth;
            let creds = auth
                .create_staff(staff, None)
                .await
                .context("cannot create the staff account")?;
            print_staff(&email, &password, &creds);
            Ok(())
        }
        Command::Org(OrgCommand::List) => {
            for o in store.list().await? {
                let f: Vec<_> = o.features.iter().map(|f| f.code()).collect();
                println!("{}\t{}\t{}", o.slug.as_str(), o.name.as_str(), f.join(","));
            }
            Ok(())
        }
    }
}

/// A new staff member's credentials, as lines for the operator.
fn staff_lines(
    email: &str,
    password: &str,
    creds: &salus_domain::account::StaffCredentials,
) -> String {
    let codes: Vec<&str> = creds.recovery_codes.iter().map(|c| c.expose()).collect();
    format!(
        "Staff account {email}\n  password:            {password}\n  authenticator app:   {}\n  secret (by hand):    {}\n  recovery codes:      {}\n",
        creds.totp.provisioning_uri,
        creds.totp.secret_base32,
        codes.join(" ")
    )
}

/// Shows a new staff member's credentials once.
fn print_staff(email: &str, password: &str, creds: &salus_domain::account::StaffCredentials) {
    print!("{}", staff_lines(email, password, creds));
}

/// Where `serve --demo` writes the demo accounts' secrets: beside the outbox, in the data folder.
fn demo_credentials_file(cfg: &Config) -> PathBuf {
    std::path::Path::new(&cfg.outbox_dir)
        .parent()
        .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf)
        .join("demo-credentials.txt")
}

/// Keeps the demo accounts' secrets (passwords, authenticator secret, recovery codes) out of
/// the log stream: they are appended to a file only its owner may read (0600), and printed
/// only when standard output is a terminal. A service manager or container runtime sends
/// standard output to the log, so there only the file's path is printed.
fn hand_over_demo_secrets(cfg: &Config, secrets: &str) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    if secrets.is_empty() {
        return Ok(());
    }
    let path = demo_credentials_file(cfg);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    file.write_all(secrets.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    if std::io::stdout().is_terminal() {
        print!("{secrets}");
    }
    let shown = std::fs::canonicalize(&path).unwrap_or(path);
    println!(
        "Demo sign-in details are in {} (readable by you only)",
        shown.display()
    );
    Ok(())
}

/// Creates the demo sign-in accounts if missing and prints how to sign in.
async fn demo_accounts(
    cfg: &Config,
    store: &salus_store::Store,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let hasher = salus_server::adapters::Argon2Hasher::for_this_machine();
    let given = (!cfg.demo_password.is_empty()).then(|| cfg.demo_password.clone());
    let mut secrets = String::new();
    match demo::seed_demo_patient_account(store, &hasher, given, clock).await? {
        Some(a) => match a.generated_password {
            Some(p) => secrets.push_str(&format!(
                "Demo patient: sign in as {} with password {p}  (set SALUS_DEMO_PASSWORD to choose it)\n",
                a.email
            )),
            None => println!(
                "Demo patient: sign in as {} with the password in SALUS_DEMO_PASSWORD",
                a.email
            ),
        },
        None => println!(
            "Demo patient: {} (already created; its password was handed over then, or is SALUS_DEMO_PASSWORD)",
            demo::DEMO_PATIENT_EMAIL
        ),
    }
    let auth = salus_server::app::api_state(store, cfg, Arc::new(SystemClock))?.auth;
    let email =
        salus_domain::text::Email::parse(demo::DEMO_CLINICIAN_EMAIL).expect("constant email");
    let exists = salus_domain::account::AccountRepository::find_by_email(store, &email)
        .await?
        .is_some();
    if exists {
        println!(
            "Demo clinician: {} (already created; its details were handed over then)",
            demo::DEMO_CLINICIAN_EMAIL
        );
        return hand_over_demo_secrets(cfg, &secrets);
    }
    let org = importer::target_org(store, Some(demo::DEMO_SLUG)).await?;
    let password = if cfg.demo_password.is_empty() {
        salus_server::adapters::OsSecrets.new_token_for_demo()
    } else {
        cfg.demo_password.clone()
    };
    let staff = salus_domain::account::NewStaff {
        email: email.clone(),
        name: salus_domain::patient::PersonName::new("Mira", "Osei").expect("constant name"),
        role: salus_domain::account::StaffRole::Clinician,
        organization: org.id,
        password: salus_domain::account::SecretText::new(password.clone()),
    };
    let creds = auth
        .create_staff(staff, None)
        .await
        .context("cannot create the demo clinician")?;
    // A care team the demo patient can write to, answered by the demo clinician.
    let clinician = salus_domain::account::AccountRepository::find_by_email(store, &email)
        .await?
        .context("the demo clinician was just created")?;
    salus_domain::messaging::MessageRepository::create_pool(
        store,
        &salus_domain::messaging::CarePool {
            id: salus_domain::PoolId::generate(&salus_store::UuidV7Ids),
            organization: org.id,
            name: salus_domain::text::PoolName::parse("Primary care").expect("constant name"),
            answer_days: 2,
            staff: [clinician.id].into(),
            active: true,
        },
    )
    .await
    .context("cannot create the demo care team")?;
    let shown_password = if cfg.demo_password.is_empty() {
        password.as_str()
    } else {
        "(SALUS_DEMO_PASSWORD)"
    };
    secrets.push_str(&staff_lines(
        demo::DEMO_CLINICIAN_EMAIL,
        shown_password,
        &creds,
    ));
    // A front desk that keeps the demo clinic's schedule (and set it up).
    let desk = auth
        .create_staff(
            salus_domain::account::NewStaff {
                email: salus_domain::text::Email::parse(demo::DEMO_FRONT_DESK_EMAIL)
                    .expect("constant email"),
                name: salus_domain::patient::PersonName::new("Sam", "Rivera")
                    .expect("constant name"),
                role: salus_domain::account::StaffRole::FrontDesk,
                organization: org.id,
                password: salus_domain::account::SecretText::new(password.clone()),
            },
            None,
        )
        .await
        .context("cannot create the demo front desk")?;
    let scheduling = salus_server::app::api_state(store, cfg, Arc::new(SystemClock))?.scheduling;
    demo::seed_demo_schedule(
        &scheduling,
        &salus_domain::access::Actor::Staff {
            account: desk.account,
            role: salus_domain::account::StaffRole::FrontDesk,
            organization: org.id,
        },
        org.time_zone.name(),
    )
    .await?;
    secrets.push_str(&staff_lines(
        demo::DEMO_FRONT_DESK_EMAIL,
        shown_password,
        &desk,
    ));
    // A billing office that posted the demo patient's statements.
    let clerk = auth
        .create_staff(
            salus_domain::account::NewStaff {
                email: salus_domain::text::Email::parse(demo::DEMO_BILLING_EMAIL)
                    .expect("constant email"),
                name: salus_domain::patient::PersonName::new("Lena", "Park")
                    .expect("constant name"),
                role: salus_domain::account::StaffRole::Billing,
                organization: org.id,
                password: salus_domain::account::SecretText::new(password.clone()),
            },
            None,
        )
        .await
        .context("cannot create the demo billing office")?;
    let patient_email =
        salus_domain::text::Email::parse(demo::DEMO_PATIENT_EMAIL).expect("constant email");
    if let Some(salus_domain::account::ChartLink::Linked { patient }) =
        salus_domain::account::AccountRepository::find_by_email(store, &patient_email)
            .await?
            .map(|a| a.chart)
    {
        let billing = salus_server::app::api_state(store, cfg, Arc::new(SystemClock))?.billing;
        demo::seed_demo_bills(
            &billing,
            &salus_domain::access::Actor::Staff {
                account: clerk.account,
                role: salus_domain::account::StaffRole::Billing,
                organization: org.id,
            },
            patient,
            SystemClock.now().date_naive(),
        )
        .await?;
    }
    secrets.push_str(&staff_lines(
        demo::DEMO_BILLING_EMAIL,
        shown_password,
        &clerk,
    ));
    hand_over_demo_secrets(cfg, &secrets)
}

fn seed_options(cfg: &Config, patients: u32) -> demo::SeedOptions {
    demo::SeedOptions {
        fixtures: Some(PathBuf::from(&cfg.fixtures)),
        synthetic_patients: patients,
        seed: 2026,
    }
}

async fn serve(cfg: &Config, store: salus_store::Store) -> anyhow::Result<()> {
    use poem::listener::{Acceptor, Listener};
    let addr = cfg.listen_addr()?;
    let notices = salus_server::app::notice_sender(&store, cfg, Arc::new(SystemClock))?;
    let app = salus_server::app(store, cfg, Arc::new(SystemClock))?;
    // Bind before announcing the address, so that it answers as soon as it is printed.
    let acceptor = poem::listener::TcpListener::bind(addr)
        .into_acceptor()
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .unwrap_or(addr);
    let grace = std::time::Duration::from_secs(cfg.shutdown_grace_secs);
    tracing::info!(url = %format!("http://{bound}/"), "Salus is listening");
    println!("Salus is running at http://{bound}/  (Ctrl-C to stop)");
    let sender = tokio::spawn(notices);
    let served = poem::Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app, shutdown_signal(), Some(grace))
        .await;
    sender.abort();
    served.context("server failed")?;
    tracing::info!("Salus stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
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
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

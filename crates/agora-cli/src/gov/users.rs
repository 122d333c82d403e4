//! `agora user`: accounts, roles, passwords and API tokens.

use agora_core::DataDir;
use agora_service::governance::{NewUser, Role, User};
use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use super::{AsArgs, Session, or_dash, read_secret_line, when};

#[derive(Debug, Args)]
pub(crate) struct UserArgs {
    #[command(flatten)]
    pub as_: AsArgs,
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// List every user (operators).
    List,
    /// Show a user.
    Show { id: String },
    /// Create a local user (operators).
    Create {
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// A role to grant (repeat for several).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<Role>,
        /// Read an initial password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's display name and email.
    Edit {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
    },
    /// Replace a user's roles (operators).
    Roles {
        id: String,
        /// The complete new set of roles.
        #[arg(required_unless_present = "none")]
        roles: Vec<Role>,
        /// Remove every role.
        #[arg(long, conflicts_with = "roles")]
        none: bool,
    },
    /// Deactivate a user: sessions end at once, API tokens stop working (operators).
    Deactivate { id: String },
    /// Reactivate a user (operators).
    Reactivate { id: String },
    /// Set a user's password, read from standard input (first line; with --token on your
    /// own account: current password on the first line, new one on the second).
    Password { id: String },
    /// API tokens: issue (shown once), list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue an API token for a user; it is printed once, only its hash is stored.
    Issue {
        id: String,
        /// A role the token carries (repeat; default: all the user's roles).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<Role>,
    },
    /// List a user's tokens (ids, roles, dates; never the tokens).
    List { id: String },
    /// Revoke a token by its id (`tok_...`).
    Revoke { id: String, token_id: String },
}

fn roles_text(roles: &[Role]) -> String {
    if roles.is_empty() {
        "-".into()
    } else {
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn print_user(u: &User) {
    out!("{}  {}", u.id, u.display_name);
    out!("  email:     {}", or_dash(u.email.as_deref()));
    out!("  roles:     {}", roles_text(&u.roles));
    out!("  active:    {}", if u.active { "yes" } else { "no" });
    out!(
        "  password:  {}",
        if u.has_password { "set" } else { "none" }
    );
    out!("  created:   {}", when(&u.created_at));
}

fn show(s: &Session, u: &User) -> Result<()> {
    if s.json {
        s.print_json(u)
    } else {
        print_user(u);
        Ok(())
    }
}

pub(crate) async fn run(dir: &DataDir, args: UserArgs) -> Result<()> {
    let s = Session::open(dir, &args.as_).await?;
    let meta = s.meta();
    let who = &s.who;
    match args.command {
        UserCommand::List => {
            let users = meta.list_users(who).await?;
            if s.json {
                return s.print_json(&users);
            }
            out!("{:<24} {:<8} {:<32} {}", "id", "active", "roles", "name");
            for u in &users {
                out!(
                    "{:<24} {:<8} {:<32} {}",
                    u.id,
                    if u.active { "yes" } else { "no" },
                    roles_text(&u.roles),
                    u.display_name
                );
            }
            Ok(())
        }
        UserCommand::Show { id } => show(&s, &meta.user(who, &id).await?),
        UserCommand::Create {
            id,
            name,
            email,
            roles,
            password_stdin,
        } => {
            let password = if password_stdin {
                let p = read_secret_line("password")?;
                let min = meta.config().passwords.min_length;
                if p.chars().count() < min {
                    bail!("password must have at least {min} characters; nothing was created");
                }
                Some(p)
            } else {
                None
            };
            let user = meta
                .create_user(
                    who,
                    NewUser {
                        id,
                        display_name: name,
                        email,
                        roles,
                    },
                )
                .await?;
            if let Some(p) = password {
                meta.set_password(who, &user.id, &p, None).await?;
            }
            show(&s, &meta.user(who, &user.id).await?)
        }
        UserCommand::Edit { id, name, email } => show(
            &s,
            &meta.update_user(who, &id, &name, email.as_deref()).await?,
        ),
        UserCommand::Roles { id, roles, none } => {
            let roles = if none { Vec::new() } else { roles };
            show(&s, &meta.set_user_roles(who, &id, &roles).await?)
        }
        UserCommand::Deactivate { id } => show(&s, &meta.set_user_active(who, &id, false).await?),
        UserCommand::Reactivate { id } => show(&s, &meta.set_user_active(who, &id, true).await?),
        UserCommand::Password { id } => {
            if who.name == id && !s.local_operator {
                let current = read_secret_line("current password")?;
                if meta.authenticate_password(&id, &current).await?.is_none() {
                    bail!("the current password is wrong");
                }
            }
            let password = read_secret_line("new password")?;
            // The command line holds no session: every session of the user ends.
            let ended = meta.set_password(who, &id, &password, None).await?;
            if s.json {
                s.print_json(&serde_json::json!({"user_id": id, "password_set": true, "sessions_ended": ended}))
            } else {
                out!("Password of {id} set; {ended} session(s) ended.");
                Ok(())
            }
        }
        UserCommand::Token(TokenCommand::Issue { id, roles }) => {
            let roles = (!roles.is_empty()).then_some(roles);
            let token = meta.issue_token(who, &id, roles.as_deref()).await?;
            // The roles the token carries, as the service will see them.
            let carried = agora_auth::resolve_token(&s.home, &token)
                .await?
                .map(|who| who.principal().roles.clone())
                .unwrap_or_default();
            let token_id = agora_service::governance::token_id(&token);
            if s.json {
                return s.print_json(&serde_json::json!({
                    "token": token, "id": token_id, "user_id": id, "roles": carried,
                }));
            }
            out!("{token}");
            eprintln!(
                "API token {token_id} for {id} (roles: {}). It is shown once: only its hash is stored.",
                roles_text(&carried)
            );
            Ok(())
        }
        UserCommand::Token(TokenCommand::List { id }) => {
            let tokens = meta.list_tokens(who, &id).await?;
            if s.json {
                return s.print_json(&tokens);
            }
            out!(
                "{:<22} {:<32} {:<22} {}",
                "id",
                "roles",
                "created",
                "revoked"
            );
            for t in &tokens {
                out!(
                    "{:<22} {:<32} {:<22} {}",
                    t.id,
                    roles_text(&t.roles),
                    when(&t.created_at),
                    t.revoked_at.as_ref().map_or("-".into(), when)
                );
            }
            Ok(())
        }
        UserCommand::Token(TokenCommand::Revoke { id, token_id }) => {
            let t = meta.revoke_token_by_id(who, &id, &token_id).await?;
            if s.json {
                return s.print_json(&t);
            }
            out!("API token {} of {} revoked.", t.id, t.user_id);
            Ok(())
        }
    }
}

//! The account's sessions: list them, end one, end all the others.

use super::*;

/// A live session of the signed-in account.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SessionDto {
    pub id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_seen_at: chrono::DateTime<chrono::Utc>,
    /// The session making this request.
    pub current: bool,
    /// The browser and system it was opened from, in words ("Firefox on Windows"), when
    /// known.
    pub device: Option<String>,
}

#[derive(Debug, Object)]
pub struct SessionList {
    pub sessions: Vec<SessionDto>,
}

#[derive(Debug, Object)]
pub struct Revoked {
    /// How many sessions ended.
    pub revoked: u64,
}

#[derive(Debug, ApiResponse)]
enum SessionsResponse {
    #[oai(status = 200)]
    Ok(Json<SessionList>),
    /// `unauthorized`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
}

#[derive(Debug, ApiResponse)]
enum RevokeResponse {
    /// The session ended.
    #[oai(status = 204)]
    Done,
    /// `unauthorized`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// `not_found`: no such session of this account.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

#[derive(Debug, ApiResponse)]
enum RevokeOthersResponse {
    #[oai(status = 200)]
    Ok(Json<Revoked>),
    /// `unauthorized`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
}

pub(crate) struct SessionsApi {
    pub(crate) auth: AuthService,
}

#[OpenApi(tag = "ApiTags::Auth")]
impl SessionsApi {
    /// The signed-in account's live sessions, newest first.
    #[oai(
        path = "/v1/me/sessions",
        method = "get",
        operation_id = "listSessions"
    )]
    async fn sessions(&self, token: SessionToken) -> Result<SessionsResponse, ApiError> {
        match self.auth.sessions(token.secret()).await {
            Ok(list) => Ok(SessionsResponse::Ok(Json(SessionList {
                sessions: list
                    .into_iter()
                    .map(|s| SessionDto {
                        id: s.id.to_string(),
                        created_at: s.created_at,
                        last_seen_at: s.last_seen_at,
                        current: s.current,
                        device: s.device,
                    })
                    .collect(),
            }))),
            Err(SessionError::Invalid) => Ok(SessionsResponse::Unauthorized(unauthorized())),
            Err(SessionError::Repo(e)) => Err(e.into()),
        }
    }

    /// End one session of the signed-in account.
    #[oai(
        path = "/v1/me/sessions/:id",
        method = "delete",
        operation_id = "revokeSession"
    )]
    async fn revoke(
        &self,
        req: &Request,
        token: SessionToken,
        id: poem_openapi::param::Path<String>,
    ) -> Result<RevokeResponse, ApiError> {
        let not_found =
            || RevokeResponse::NotFound(ErrorBody::new("not_found", "No such session."));
        let Ok(target) = salus_domain::SessionId::parse(&id.0) else {
            return Ok(not_found());
        };
        match self
            .auth
            .revoke_session(token.secret(), target, request_id(req).as_deref())
            .await
        {
            Ok(true) => Ok(RevokeResponse::Done),
            Ok(false) => Ok(not_found()),
            Err(SessionError::Invalid) => Ok(RevokeResponse::Unauthorized(unauthorized())),
            Err(SessionError::Repo(e)) => Err(e.into()),
        }
    }

    /// End every session of the signed-in account except this one.
    #[oai(
        path = "/v1/me/sessions/revoke-others",
        method = "post",
        operation_id = "revokeOtherSessions"
    )]
    async fn revoke_others(
        &self,
        req: &Request,
        token: SessionToken,
    ) -> Result<RevokeOthersResponse, ApiError> {
        match self
            .auth
            .revoke_other_sessions(token.secret(), request_id(req).as_deref())
            .await
        {
            Ok(revoked) => Ok(RevokeOthersResponse::Ok(Json(Revoked { revoked }))),
            Err(SessionError::Invalid) => Ok(RevokeOthersResponse::Unauthorized(unauthorized())),
            Err(SessionError::Repo(e)) => Err(e.into()),
        }
    }
}

//! Existence by timing (issue 11, item 15): an object the caller may not see and a missing
//! id must take the same path, so neither the answer nor its time tells them apart. Timing
//! is too noisy to test; instead the hidden object is made unreadable, and the refusal must
//! still be exactly the `NotFound` of a missing id: proof that it was never loaded.

use agora_govern::{ApplicationState as S, Error};

use crate::support::hubs;

#[tokio::test]
async fn hidden_permits_and_applications_are_refused_without_being_read() {
    for h in hubs().await {
        let b = h.env.backend;
        let app = h.app_in(S::Active, None).await;
        let permit = h.application(&h.op, &app).await.unwrap().permit_id.unwrap();
        let raw = h.env.raw().await;
        sqlx::query("UPDATE permit_versions SET terms = 'unreadable' WHERE permit_id = $1")
            .bind(&permit)
            .execute(&raw)
            .await
            .unwrap();
        sqlx::query("UPDATE applications SET form = 'unreadable' WHERE id = $1")
            .bind(&app)
            .execute(&raw)
            .await
            .unwrap();
        raw.close().await;

        // carol is neither an applicant nor a member: the permit does not exist for her.
        let missing = h
            .permit(&h.carol, "pmt_0000000000000000")
            .await
            .unwrap_err();
        for hidden in [
            h.permit(&h.carol, &permit).await.unwrap_err(),
            h.permit_versions(&h.carol, &permit).await.unwrap_err(),
        ] {
            assert!(matches!(hidden, Error::NotFound(_)), "{b}: {hidden}");
            assert_eq!(hidden.to_string(), missing.to_string(), "{b}");
        }
        let missing = h.application(&h.carol, "app_0000000000000000").await;
        let hidden = h.application(&h.carol, &app).await;
        let (missing, hidden) = (missing.unwrap_err(), hidden.unwrap_err());
        assert!(matches!(hidden, Error::NotFound(_)), "{b}: {hidden}");
        assert_eq!(hidden.to_string(), missing.to_string(), "{b}");

        // Whoever may see them does read them (and meets the damage).
        let seen = h.permit(&h.alice, &permit).await.unwrap_err();
        assert!(!matches!(seen, Error::NotFound(_)), "{b}: {seen}");
        let seen = h.application(&h.rev1, &app).await.unwrap_err();
        assert!(!matches!(seen, Error::NotFound(_)), "{b}: {seen}");
    }
}

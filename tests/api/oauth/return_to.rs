//! `return_to` (issue 10, item 11): it must be on the origin and under the path of
//! `FH_FRONTEND_URL` or of an `FH_CORS_ORIGINS` entry, by whole segments, not just the origin.

use founderhouse_integrations::domain::Role;
use tonic::Code;

use super::{Flavour, Options, connect_as, rig_with, start};
use crate::helpers::violated_fields;

/// The frontend lives under `/app/` of an origin it shares; a partner app is allowed by a CORS
/// entry with a path.
async fn rig_under_paths() -> (crate::helpers::TestApp, super::Fake) {
    rig_with(Flavour::Zoom, Options::default(), |c| {
        c.frontend_url = "http://localhost:3000/app/".parse().expect("literal url");
        c.cors_origins = vec![
            "http://localhost:3000".to_owned(),
            "https://partner.founderhouse.test/fh".to_owned(),
        ];
    })
    .await
}

#[tokio::test]
async fn a_return_to_on_the_frontends_origin_but_outside_its_path_is_refused() {
    let (app, fake) = rig_under_paths().await;
    let token = app.token(Role::Member);

    for bad in [
        "http://localhost:3000/admin",
        "http://localhost:3000/",
        "http://localhost:3000/application",
        "http://localhost:3000/app/../admin",
        "http://localhost:3000/app/%2e%2e/admin",
        "https://partner.founderhouse.test/other",
        "https://partner.founderhouse.test/fhx",
    ] {
        let status = start(&app, Flavour::Zoom, bad, &token).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}: {status:?}");
        assert_eq!(violated_fields(&status), vec!["return_to"], "{bad}");
    }
    assert!(fake.authorizations().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_return_to_under_the_frontends_path_or_a_cors_entrys_path_is_honoured() {
    let (app, fake) = rig_under_paths().await;
    let token = app.token(Role::Member);

    for good in [
        "http://localhost:3000/app",
        "http://localhost:3000/app/settings?tab=oauth",
        "https://partner.founderhouse.test/fh",
        "https://partner.founderhouse.test/fh/done",
    ] {
        let landing = connect_as(&app, &fake, &token, good).await;
        let mut expected = reqwest::Url::parse(good).unwrap();
        expected.set_query(None);
        assert_eq!(landing.base(), expected.as_str(), "{good}");
        landing.assert_success(Flavour::Zoom);
    }
    app.stop().await;
}

#[tokio::test]
async fn without_a_return_to_the_browser_lands_on_the_frontend_url_itself() {
    let (app, fake) = rig_under_paths().await;

    let landing = connect_as(&app, &fake, &app.token(Role::Member), "").await;

    assert_eq!(landing.base(), "http://localhost:3000/app/");
    landing.assert_success(Flavour::Zoom);
    app.stop().await;
}

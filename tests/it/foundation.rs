//! The foundation end to end: a real server on 127.0.0.1:0 and tonic
//! clients, as a caller in another process would see it.

use std::time::Duration;

use sslvpn_gateway::{
    pb::{self, ssl_vpn_service_client::SslVpnServiceClient},
    server::ServerHandle,
    server::config::ServeConfig,
};
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

use crate::support::harness::{channel, offline_config, start_server};

/// No cloud behind it: these tests never get past validation.
async fn start() -> (ServerHandle, Channel) {
    start_with(offline_config()).await
}

async fn start_with(config: ServeConfig) -> (ServerHandle, Channel) {
    let handle = start_server(config).await;
    let channel = channel(format!("http://{}", handle.local_addr())).await;
    (handle, channel)
}

#[tokio::test]
async fn invalid_modify_returns_every_violation_in_details() {
    let (handle, channel) = start().await;
    let mut client = SslVpnServiceClient::new(channel);
    let status = client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            region_id: "cn-hangzhou".into(),
            ssl_vpn_server_id: "vss-bp18q7hzj6largv4v1234".into(),
            client_ip_pool: Some("10.0.0.0/30".into()),
            local_subnet: Some("10.0.0.0/8,127.0.0.0/8".into()),
            port: Some(443),
            enable_multi_factor_auth: Some(true),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.domain, "vpc.aliyuncs.com");
    assert_eq!(info.reason, "ClientIpPool.NetmaskInvalid");
    let violations: Vec<(String, String)> = details
        .bad_request()
        .expect("BadRequest")
        .field_violations
        .iter()
        .map(|v| (v.field.clone(), v.reason.clone()))
        .collect();
    let expected = [
        ("client_ip_pool", "ClientIpPool.NetmaskInvalid"),
        ("local_subnet", "InvalidParameter.LocalSubnet"),
        ("port", "InvalidParameter.Port"),
        ("idaas_instance_id", "MissingParameter.IDaaSInstanceId"),
        ("idaas_region_id", "MissingParam.IDaaSRegionId"),
    ];
    assert_eq!(
        violations,
        expected
            .iter()
            .map(|(f, r)| (f.to_string(), r.to_string()))
            .collect::<Vec<_>>()
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_enum_number_and_missing_ids_are_refused() {
    let (handle, channel) = start().await;
    let mut client = SslVpnServiceClient::new(channel);
    let status = client
        .get_ssl_vpn_server_status(pb::GetSslVpnServerStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = status
        .get_error_details()
        .bad_request()
        .expect("BadRequest")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, ["region_id", "ssl_vpn_server_id"]);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let (handle, channel) = start().await;
    let mut client = SslVpnServiceClient::new(channel);
    let status = client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            region_id: "cn-hangzhou".into(),
            ssl_vpn_server_id: "vss-abc".into(),
            name: Some("x".repeat(100 * 1024)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_reports_serving_then_not_serving_on_shutdown() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    // A health Watch stream is never ended by tonic-health: shutdown must
    // still finish, bounded by the grace period.
    let grace = Duration::from_millis(500);
    let (handle, channel) = start_with(ServeConfig {
        shutdown_grace: grace,
        ..offline_config()
    })
    .await;
    let mut health = HealthClient::new(channel);
    for service in ["", "sslvpn.v1.SslVpnService"] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving, "{service:?}");
    }
    let mut updates = health
        .watch(HealthCheckRequest {
            service: "sslvpn.v1.SslVpnService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = updates.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    handle.begin_shutdown();
    let next = tokio::time::timeout(Duration::from_secs(5), updates.message())
        .await
        .expect("health update before the stream closes");
    // Either NOT_SERVING arrives, or the stream is closed by the shutdown.
    if let Ok(Some(update)) = next {
        assert_eq!(update.status(), ServingStatus::NotServing);
    }
    tokio::time::timeout(Duration::from_secs(5), handle.wait())
        .await
        .expect("shutdown bounded by the grace period")
        .unwrap();
}

#[tokio::test]
async fn reflection_lists_the_service_in_both_versions() {
    use tokio_stream::StreamExt;
    let (handle, channel) = start().await;

    let mut v1 = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
        channel.clone(),
    );
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut replies = v1
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.next().await.unwrap().unwrap();
    let Some(
        tonic_reflection::pb::v1::server_reflection_response::MessageResponse::ListServicesResponse(
            list,
        ),
    ) = reply.message_response
    else {
        panic!("unexpected reflection reply");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"sslvpn.v1.SslVpnService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );

    // The error-detail types resolve, so clients can decode BadRequest.
    let mut v1alpha =
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(
            channel,
        );
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "google.rpc.BadRequest".into(),
            ),
        ),
    };
    let mut replies = v1alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.next().await.unwrap().unwrap();
    assert!(matches!(
        reply.message_response,
        Some(tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
    ));
    handle.shutdown().await.unwrap();
}

"""The official Python SDK (alibabacloud-vpc20160428) against the emulator.

Run through tests/python/run.sh, which starts the emulator and sets
SSLVPN_EMULATOR_ENDPOINT (host:port) with accept lag 200 ms, apply time
400 ms and no quiet period. Every test starts from a reset emulator.
"""

import json
import os
import time
import urllib.request

import pytest
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428 import models
from alibabacloud_vpc20160428.client import Client
from darabonba.exceptions import UnretryableException

ENDPOINT = os.environ.get("SSLVPN_EMULATOR_ENDPOINT", "127.0.0.1:18080")
# The documented demo pair and the default fixtures' other keys (docs/emulator.md).
DEMO_ID, DEMO_SECRET = "LTAI5tEMULATORDEMOKEY", "EmulatorDemoSecret0123456789abcd"
LIMITED_ID, LIMITED_SECRET = "LTAI5tEMULATORLIMITED", "EmulatorLimitedSecret0123456789ab"
STS_ID, STS_SECRET = "STS.EMULATORDEMOKEY", "EmulatorStsSecret0123456789abcdef"
STS_TOKEN = "CAIS.EMULATOR+STS/Token=="
REGION = "cn-hangzhou"

# None: the SDK's default (V3 ACS3-HMAC-SHA256); 'v2': legacy HMAC-SHA1.
ALGORITHMS = [None, "v2"]


def admin(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"http://{ENDPOINT}/_emulator{path}", data=data, method=method,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture(autouse=True)
def fresh_emulator():
    admin("POST", "/reset")


def client(algorithm=None, key_id=DEMO_ID, secret=DEMO_SECRET, token=None):
    config = Config(
        access_key_id=key_id,
        access_key_secret=secret,
        security_token=token,
        endpoint=ENDPOINT,
        protocol="http",
        region_id=REGION,
        read_timeout=5000,
        connect_timeout=2000,
    )
    if algorithm:
        config.signature_algorithm = algorithm
    return Client(config)


def gateway(c, gateway_id="vpn-hz1primary"):
    return c.describe_vpn_gateway(
        models.DescribeVpnGatewayRequest(region_id=REGION, vpn_gateway_id=gateway_id)
    ).body


def server(c, server_id):
    body = c.describe_ssl_vpn_servers(
        models.DescribeSslVpnServersRequest(region_id=REGION, ssl_vpn_server_id=server_id)
    ).body
    assert body.total_count == 1
    return body.ssl_vpn_servers.ssl_vpn_server[0]


def wait_for_status(c, gateway_id, status, timeout=5.0):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        now = gateway(c, gateway_id).status
        if not seen or seen[-1] != now:
            seen.append(now)
        if now == status:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"{gateway_id} never became {status}: {seen}")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_describe_vpn_gateway(algorithm):
    resp = client(algorithm).describe_vpn_gateway(
        models.DescribeVpnGatewayRequest(region_id=REGION, vpn_gateway_id="vpn-hz1primary")
    )
    assert resp.status_code == 200
    body = resp.body
    assert body.request_id
    assert body.vpn_gateway_id == "vpn-hz1primary"
    assert body.vpc_id == "vpc-hz1"
    assert body.status == "active"
    assert body.business_status == "Normal"
    assert body.ssl_max_connections == 50
    assert body.tags.tag[0].key == "env"
    assert json.loads(body.tag)["IDaaSNewVersion"] == "true"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_describe_vpn_gateways_pages_and_filters(algorithm):
    c = client(algorithm)
    first = c.describe_vpn_gateways(
        models.DescribeVpnGatewaysRequest(region_id=REGION, page_number=1, page_size=4)
    ).body
    assert (first.total_count, first.page_number, first.page_size) == (10, 1, 4)
    assert len(first.vpn_gateways.vpn_gateway) == 4
    last = c.describe_vpn_gateways(
        models.DescribeVpnGatewaysRequest(region_id=REGION, page_number=3, page_size=4)
    ).body
    assert len(last.vpn_gateways.vpn_gateway) == 2
    tagged = c.describe_vpn_gateways(
        models.DescribeVpnGatewaysRequest(
            region_id=REGION,
            tag=[models.DescribeVpnGatewaysRequestTag(key="env", value="test")],
        )
    ).body
    assert [g.vpn_gateway_id for g in tagged.vpn_gateways.vpn_gateway] == ["vpn-hz1primary"]
    locked = c.describe_vpn_gateways(
        models.DescribeVpnGatewaysRequest(region_id=REGION, business_status="FinancialLocked")
    ).body
    assert [g.vpn_gateway_id for g in locked.vpn_gateways.vpn_gateway] == ["vpn-hz2locked"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_describe_ssl_vpn_servers(algorithm):
    body = client(algorithm).describe_ssl_vpn_servers(
        models.DescribeSslVpnServersRequest(region_id=REGION, vpn_gateway_id="vpn-hz1peer")
    ).body
    assert body.total_count == 1
    s = body.ssl_vpn_servers.ssl_vpn_server[0]
    assert s.ssl_vpn_server_id == "vss-hz1peer"
    assert (s.proto, s.port, s.cipher, s.compress) == ("UDP", 1194, "AES-128-CBC", True)
    assert s.client_ip_pool == "10.20.0.0/24"
    assert s.max_connections == 50


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_modify_name_only_is_synchronous(algorithm):
    c = client(algorithm)
    # Space, '~', '/' and non-ASCII: the encodings the signatures must agree on.
    name = "sslvpn test~/\u00e4"
    body = c.modify_ssl_vpn_server(
        models.ModifySslVpnServerRequest(
            region_id=REGION, ssl_vpn_server_id="vss-hz1primary", name=name
        )
    ).body
    assert body.request_id
    assert body.name == name
    assert server(c, "vss-hz1primary").name == name
    assert gateway(c).status == "active"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_modify_is_asynchronous_and_idempotent(algorithm):
    c = client(algorithm)
    request = models.ModifySslVpnServerRequest(
        region_id=REGION,
        ssl_vpn_server_id="vss-hz1primary",
        port=1195,
        proto="TCP",
        compress=False,  # the SDK sends "False"
        local_subnet="172.16.0.0/24,172.16.2.0/24",
        client_token=f"sdk-{algorithm}",
    )
    first = c.modify_ssl_vpn_server(request).body
    assert first.port == 1195 and first.compress is False
    # The cloud does not flip at once: still active, still the old port.
    assert gateway(c).status == "active"
    assert server(c, "vss-hz1primary").port == 1194
    # A retry with the same token is the same request.
    again = c.modify_ssl_vpn_server(request).body
    assert again.request_id == first.request_id

    seen = wait_for_status(c, "vpn-hz1primary", "updating")
    assert seen[0] == "active"
    assert server(c, "vss-hz1primary").port == 1194
    wait_for_status(c, "vpn-hz1primary", "active")
    s = server(c, "vss-hz1primary")
    assert (s.port, s.proto, s.compress) == (1195, "TCP", False)
    assert s.local_subnet == "172.16.0.0/24,172.16.2.0/24"

    counters = admin("GET", "/counters")
    assert counters["modifications_by_client_token"][f"sdk-{algorithm}"] == 1
    assert counters["gateway_polls"]["vpn-hz1primary"] >= 2


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_wrong_secret_is_refused(algorithm):
    with pytest.raises(ClientException) as exc:
        gateway(client(algorithm, secret="not-the-secret"))
    assert exc.value.code == "SignatureDoesNotMatch"
    assert exc.value.status_code == 400
    assert exc.value.request_id
    assert "server string to sign is:" in exc.value.data["Message"]
    assert exc.value.data["HostId"] and exc.value.data["Recommend"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_an_unknown_key_is_not_found(algorithm):
    with pytest.raises(ClientException) as exc:
        gateway(client(algorithm, key_id="LTAI5tNOBODY"))
    assert (exc.value.status_code, exc.value.code) == (404, "InvalidAccessKeyId.NotFound")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sts_credentials(algorithm):
    assert gateway(client(algorithm, STS_ID, STS_SECRET, STS_TOKEN)).status == "active"
    with pytest.raises(ClientException) as exc:
        gateway(client(algorithm, STS_ID, STS_SECRET, "CAIS.other"))
    assert exc.value.code == "InvalidSecurityToken.MismatchWithAccessKey"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_cloud_errors_map_to_sdk_exceptions(algorithm):
    c = client(algorithm)
    # The fixture gateway that is busy.
    with pytest.raises(ClientException) as exc:
        c.modify_ssl_vpn_server(
            models.ModifySslVpnServerRequest(
                region_id=REGION, ssl_vpn_server_id="vss-hz2updating", port=1195
            )
        )
    assert (exc.value.status_code, exc.value.code) == (400, "VpnGateway.Configuring")

    with pytest.raises(ClientException) as exc:
        c.modify_ssl_vpn_server(
            models.ModifySslVpnServerRequest(
                region_id=REGION, ssl_vpn_server_id="vss-hz1primary", client_ip_pool="10.20.0.0/24"
            )
        )
    assert exc.value.code == "IpConflict"

    with pytest.raises(ClientException) as exc:
        gateway(client(algorithm, LIMITED_ID, LIMITED_SECRET), "vpn-hz1peer")
    assert (exc.value.status_code, exc.value.code) == (403, "Forbidden")
    assert exc.value.access_denied_detail["AuthAction"] == "vpc:DescribeVpnGateway"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_faults_map_to_sdk_exceptions(algorithm):
    admin(
        "PUT",
        "/faults/DescribeVpnGateway",
        {"script": ["throttling", "service_unavailable", "reset", "ok"], "retry_after_ms": 1500},
    )
    c = client(algorithm)
    with pytest.raises(ThrottlingException) as exc:
        gateway(c)
    assert exc.value.code == "Throttling.User" and exc.value.retry_after == 1500
    with pytest.raises(ServerException) as exc:
        gateway(c)
    assert (exc.value.status_code, exc.value.code) == (503, "ServiceUnavailable")
    with pytest.raises(UnretryableException):
        gateway(c)
    assert gateway(c).status == "active"
    counters = admin("GET", "/counters")["requests"]["DescribeVpnGateway"]
    assert counters == {
        "Throttling.User": 1,
        "ServiceUnavailable": 1,
        "ConnectionReset": 1,
        "Success": 1,
    }


def test_applied_then_dropped_still_applies():
    admin("PUT", "/faults/ModifySslVpnServer", {"script": ["applied_then_drop"]})
    c = client()
    request = models.ModifySslVpnServerRequest(
        region_id=REGION, ssl_vpn_server_id="vss-hz1peer", name="renamed", client_token="drop-1"
    )
    with pytest.raises(UnretryableException):
        c.modify_ssl_vpn_server(request)
    assert server(c, "vss-hz1peer").name == "renamed"
    # The caller's retry with the same token is answered, not applied again.
    assert c.modify_ssl_vpn_server(request).body.name == "renamed"
    counters = admin("GET", "/counters")
    assert counters["modifications_by_client_token"]["drop-1"] == 1
    assert counters["requests"]["ModifySslVpnServer"] == {"AppliedThenDropped": 1, "Success": 1}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_an_eiam1_instance_needs_no_application_and_reports_no_version(algorithm):
    c = client(algorithm)
    body = c.modify_ssl_vpn_server(
        models.ModifySslVpnServerRequest(
            region_id=REGION,
            ssl_vpn_server_id="vss-hz3eiam1",
            enable_multi_factor_auth=True,
            idaa_sinstance_id="idaas-cn-hangzhou-eiam1",
            idaa_sregion_id=REGION,
        )
    ).body
    assert body.enable_multi_factor_auth is True
    # "If the SSL server is associated with an IDaaS EIAM 1.0 instance, no
    # value is returned": absent on the wire, so None in the model.
    assert body.idaa_sinstance_version is None
    wait_for_status(c, "vpn-hz3eiam1", "updating")
    wait_for_status(c, "vpn-hz3eiam1", "active")
    s = server(c, "vss-hz3eiam1")
    assert s.enable_multi_factor_auth is True
    assert s.idaa_sinstance_version is None
    # An EIAM 2.0 instance needs its application.
    with pytest.raises(ClientException) as exc:
        c.modify_ssl_vpn_server(
            models.ModifySslVpnServerRequest(
                region_id=REGION,
                ssl_vpn_server_id="vss-hz1primary",
                enable_multi_factor_auth=True,
                idaa_sinstance_id="idaas-cn-hangzhou-eiam2",
                idaa_sregion_id=REGION,
            )
        )
    assert (exc.value.status_code, exc.value.code) == (400, "MissingParam.IDaaSApplicationId")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_dual_tunnel_gateway_and_the_fields_real_answers_carry(algorithm):
    c = client(algorithm)
    dual = gateway(c, "vpn-hz5dual")
    assert dual.internet_ip == "47.98.10.10"
    assert dual.disaster_recovery_internet_ip == "47.98.10.11"
    assert dual.disaster_recovery_vswitch_id == "vsw-hz5dualb"
    assert dual.ssl_vpn_internet_ip == "47.98.10.12"
    assert json.loads(dual.tag)["VpnVersion"] == "v1.3.7"
    single = gateway(c)
    assert single.ssl_vpn_internet_ip is None and single.disaster_recovery_internet_ip is None
    assert json.loads(single.tag)["VpnVersion"] == "v1.2.4"
    assert server(c, "vss-hz5dual").dns_servers == "100.100.2.136,100.100.2.138"


def test_busy_codes_and_an_optional_retry_after_map_to_sdk_exceptions():
    admin(
        "PUT",
        "/faults/DescribeVpnGateway",
        {
            "script": [
                "operation_conflict",
                "task_conflict",
                "vpn_task_conflict",
                "incorrect_status",
                "throttling_plain",
                "unknown_error",
                "operation_conflict",
                "throttling",
            ],
            "retry_after_ms_by_fault": {"operation_conflict": 2500, "throttling": 0},
        },
    )
    c = client()
    expected = [
        (409, "OperationConflict"),
        (400, "TaskConflict"),
        (400, "VpnTask.CONFLICT"),
        (400, "IncorrectStatus.VpnGateway"),
        (400, "Throttling"),
    ]
    # The first operation_conflict has the header: a ThrottlingException.
    with pytest.raises(ThrottlingException) as exc:
        gateway(c)
    assert (exc.value.code, exc.value.retry_after) == ("OperationConflict", 2500)
    for status, code in expected[1:]:
        with pytest.raises(ClientException) as exc:
            gateway(c)
        assert not isinstance(exc.value, ThrottlingException), code
        assert (exc.value.status_code, exc.value.code) == (status, code)
    with pytest.raises(ServerException) as exc:
        gateway(c)
    assert (exc.value.status_code, exc.value.code) == (500, "UnknownError")
    with pytest.raises(ThrottlingException):
        gateway(c)
    # Throttling.User without its header: a plain ClientException.
    with pytest.raises(ClientException) as exc:
        gateway(c)
    assert not isinstance(exc.value, ThrottlingException)
    assert exc.value.code == "Throttling.User"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_dry_run_answers_dry_run_operation_and_changes_nothing(algorithm):
    c = client(algorithm)
    # "If the check passes, the DryRunOperation error code is returned."
    with pytest.raises(ClientException) as exc:
        c.modify_ssl_vpn_server(
            models.ModifySslVpnServerRequest(
                region_id=REGION, ssl_vpn_server_id="vss-hz1primary", port=1195, dry_run=True
            )
        )
    assert (exc.value.status_code, exc.value.code) == (400, "DryRunOperation")
    assert exc.value.request_id
    # "If the check fails, the corresponding error is returned."
    for params, code in [
        ({"port": 443}, "InvalidParameter.Port"),
        ({"client_ip_pool": "10.20.0.0/24"}, "IpConflict"),
    ]:
        with pytest.raises(ClientException) as exc:
            c.modify_ssl_vpn_server(
                models.ModifySslVpnServerRequest(
                    region_id=REGION, ssl_vpn_server_id="vss-hz1primary", dry_run=True, **params
                )
            )
        assert exc.value.code == code
    assert gateway(c).status == "active"
    assert server(c, "vss-hz1primary").port == 1194
    counters = admin("GET", "/counters")
    assert counters["modifications_accepted"] == 0
    assert counters["requests"]["ModifySslVpnServer"]["DryRunOperation"] == 1

"""A Python client generated from proto/ with grpcio-tools, against the gateway.

Run through tests/python_client/run.sh, which generates the stubs, starts
`sslvpn-gateway serve --emulator` and sets SSLVPN_GATEWAY_ADDR (host:port).
This is what a Python team does with the contract: no hand-written
messages, the richer error model decoded with grpcio-status.
"""

import os
import uuid

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sslvpn.v1 import sslvpn_pb2 as pb
from sslvpn.v1 import sslvpn_pb2_grpc as rpc

ADDR = os.environ.get("SSLVPN_GATEWAY_ADDR", "127.0.0.1:50051")
REGION = "cn-hangzhou"
SERVER = "vss-hz1primary"


@pytest.fixture
def stub():
    with grpc.insecure_channel(ADDR) as channel:
        yield rpc.SslVpnServiceStub(channel)


def details(err):
    """The ErrorInfo and BadRequest carried by a failed call."""
    status = rpc_status.from_call(err)
    assert status is not None, "the error carries google.rpc.Status details"
    info, bad = None, None
    for any_ in status.details:
        if any_.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            any_.Unpack(info)
        elif any_.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            any_.Unpack(bad)
    return info, bad


def test_modify_then_watch_until_succeeded(stub):
    token = str(uuid.uuid4())
    request = pb.ModifySslVpnServerRequest(
        region_id=REGION,
        ssl_vpn_server_id=SERVER,
        client_token=token,
        port=1196,
        local_subnet="172.16.0.0/16,10.8.0.0/24",
        proto=pb.PROTOCOL_TCP,
    )
    # Field presence: only what was set is sent (and changed).
    assert request.HasField("port") and not request.HasField("name")
    reply = stub.ModifySslVpnServer(request, timeout=30)
    assert reply.client_token == token
    assert reply.operation.id.startswith("op1.")
    assert not reply.operation.done
    assert reply.operation.vpn_gateway_id == "vpn-hz1primary"

    watch = pb.WatchSslVpnServerRequest(
        region_id=REGION, ssl_vpn_server_id=SERVER, operation_id=reply.operation.id
    )
    messages = list(stub.WatchSslVpnServer(watch, timeout=60))
    phases = [m.phase for m in messages]
    assert phases[-1] == pb.PHASE_SUCCEEDED, phases
    assert all(p in (pb.PHASE_PENDING, pb.PHASE_APPLYING) for p in phases[:-1]), phases
    last = messages[-1]
    assert last.gateway.status == pb.GATEWAY_STATUS_ACTIVE
    assert last.ssl_vpn_server.port == 1196
    assert last.ssl_vpn_server.proto == pb.PROTOCOL_TCP
    assert last.ssl_vpn_server.local_subnet == "172.16.0.0/16,10.8.0.0/24"
    assert list(last.pending_fields) == []

    # The same token again is answered, never applied twice.
    again = stub.ModifySslVpnServer(request, timeout=30)
    assert again.client_token == token

    status = stub.GetSslVpnServerStatus(
        pb.GetSslVpnServerStatusRequest(region_id=REGION, ssl_vpn_server_id=SERVER),
        timeout=30,
    )
    assert status.ssl_vpn_server.port == 1196


def test_invalid_argument_lists_every_violation_in_bad_request(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModifySslVpnServer(
            pb.ModifySslVpnServerRequest(
                region_id=REGION,
                ssl_vpn_server_id=SERVER,
                client_ip_pool="10.0.0.0/30",
                port=443,
            ),
            timeout=30,
        )
    err = caught.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, bad = details(err)
    assert bad is not None, "BadRequest details"
    violations = {v.field: v for v in bad.field_violations}
    assert sorted(violations) == ["client_ip_pool", "port"]
    assert violations["client_ip_pool"].reason == "ClientIpPool.NetmaskInvalid"
    assert all(v.description for v in violations.values())
    assert info is not None, "ErrorInfo details"
    assert info.domain == "vpc.aliyuncs.com"
    assert info.reason in {v.reason for v in violations.values()}


def test_unknown_server_is_not_found_with_the_cloud_code(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetSslVpnServerStatus(
            pb.GetSslVpnServerStatusRequest(
                region_id=REGION, ssl_vpn_server_id="vss-doesnotexist"
            ),
            timeout=30,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    info, _ = details(caught.value)
    assert info.reason == "InvalidSslVpnServerId.NotFound"

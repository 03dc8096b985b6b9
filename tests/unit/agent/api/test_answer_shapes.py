"""One answer shape per resource: the pydantic models in agent/api/schemas.py and
agent/web/shapes.py are what the list's row cache, the dashboard's grid cache and the
routes serialise. The expected texts below are what the hand-built dicts produced before
the models became the single source (byte for byte: key order, null vs missing, UTF-8)."""

import json
from types import SimpleNamespace

import pytest

from agent.api.rendering import RowRenderer
from agent.api.schemas import (
    DeepLinkListOut,
    EventOut,
    EventPageOut,
    IntentOut,
    ServerDetailOut,
    ServerOut,
)
from agent.models import (
    CheckResult,
    EventKind,
    EventPage,
    EventRecord,
    ReadingRecord,
    ServerIntent,
    Verdict,
)
from agent.monitor.deeplink_status import DeepLinkView
from agent.monitor.rental_source import RentalView
from agent.secrets import Sealer, Secret, generate_key
from agent.store import Store
from agent.web.grid_cache import build_body
from agent.web.shapes import UiEventPageOut, UiServerDetailOut

LIST_TEXT = (
    '{"count":2,"items":[{"uuid":"pc-1","ip":"10.0.0.1","os":"","desc":"座位 1 </script>",'
    '"ipmi_host":"127.0.0.1","ipmi_port":null,"ipmi_user":"admin","mac":null,'
    '"labels":{"row":"A","zone":"vip"},"node_id":null,"has_node_key":false,"state":"pending",'
    '"state_detail":"","verdict":{"verdict":"mismatch","reasons":["power","boot"],'
    '"since":1733234567.123456,"checked_at":1733234567.123456,"last_ok_at":1733234567.123456},'
    '"reading":{"ts":1733234567.123456,"power":"on","boot_device":"pxe","boot_valid":true,'
    '"boot_persistent":false,"boot_uefi":null,"dbc_path_ok":true,"dbc_path_message":"ok",'
    '"dbc_power_status":"running","error_class":null,"error_detail":"","latency_ms":12.5},'
    '"rental":{"state":"unknown","until":null,"stale":false}},'
    '{"uuid":"pc-2","ip":"10.0.0.2","os":"","desc":"","ipmi_host":"127.0.0.2","ipmi_port":623,'
    '"ipmi_user":"admin","mac":"aa:bb:cc:dd:ee:ff","labels":{},"node_id":null,'
    '"has_node_key":false,"state":"pending","state_detail":"","verdict":null,"reading":null,'
    '"rental":{"state":"unknown","until":null,"stale":false}}]}')

# ROT: pc-1's rotation time, stamped by the store's clock.
GRID_TEXT = (
    '{"servers":[{"u":"pc-1","ip":"10.0.0.1","d":"座位 1 </script>","l":{"row":"A","zone":"vip"},'
    '"st":"pending","v":"mismatch","p":"on","b":"pxe","bp":false,"t":1733234567.123456,'
    '"e":null,"dl":{"f":"fresh","rot":ROT,"res":"confirmed","dup":true},'
    '"r":{"state":"unknown","until":null,"stale":false}},{"u":"pc-2",'
    '"ip":"10.0.0.2","d":"","l":{},"st":"pending","v":"unknown","p":null,"b":null,"bp":false,'
    '"t":null,"e":null,"dl":{"f":"unknown","rot":null,"res":"","dup":true},'
    '"r":{"state":"unknown","until":null,"stale":false}}],"pass_at":null,"interval_s":60.0}')

VIEWS = [
    DeepLinkView(uuid="pc-1", ip="10.0.0.1", node_id=None, device_id="123", last_rotated_at=2.0,
                 last_boot_seen_at=None, last_result="confirmed", last_error="",
                 freshness="stale", duplicate_with=("pc-2",)),
    DeepLinkView(uuid="pc-2", ip="10.0.0.2", node_id="n", device_id="123", last_rotated_at=None,
                 last_boot_seen_at=3.0, last_result="", last_error="x", freshness="unknown",
                 duplicate_with=("pc-1",)),
]
EVENTS = (
    EventRecord(id=7, ts=4.25, actor="alice", kind=EventKind.AUDIT, action="power",
                server_uuid="pc-1", result="ok", verified=True, detail={"k": [1, "é"]}),
    EventRecord(id=8, ts=5.0, actor="system", kind=EventKind.AUDIT),
)


def _text(model) -> str:
    """The text the routes send: FastAPI's JSONResponse of ``model_dump(mode="json")``."""
    return json.dumps(model.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))


class _Facade:
    """The reads of the Agent façade the grid cache uses, over a real store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.monitor = SimpleNamespace(last_pass=None)  # no pass yet
        self.settings = SimpleNamespace(check=SimpleNamespace(interval_s=60.0))

    def rental_view(self, _node_id):
        return RentalView()  # no chain, no rentals file

    def server_statuses(self):
        return self.store.status.find()

    def deeplink_statuses(self):
        return set(self.store.deeplink.duplicate_device_ids()), self.store.deeplink.all()


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "agent.db", sealer=Sealer(generate_key())) as opened:
        one = opened.servers.add(uuid="pc-1", ip="10.0.0.1", ipmi_host="127.0.0.1",
                                 ipmi_user="admin", ipmi_password=Secret("pw123456"),
                                 desc="座位 1 </script>", labels={"zone": "vip", "row": "A"})
        two = opened.servers.add(uuid="pc-2", ip="10.0.0.2", ipmi_host="127.0.0.2",
                                 ipmi_user="admin", ipmi_password=Secret("pw123456"),
                                 ipmi_port=623, mac="aa:bb:cc:dd:ee:ff")
        reading = ReadingRecord(server_id=one.id, ts=1733234567.123456, power="on",
                                boot_device="pxe", boot_valid=True, boot_persistent=False,
                                dbc_path_ok=True, dbc_path_message="ok",
                                dbc_power_status="running", latency_ms=12.5)
        opened.checks.record(results=[CheckResult(reading=reading, verdict=Verdict.MISMATCH,
                                                  reasons=("power", "boot"))],
                             keep_per_server=10)
        opened.deeplink.record(server_id=one.id, result="confirmed", device_id="123",
                               rotated=True)
        opened.deeplink.record(server_id=two.id, result="", device_id="123")
        yield opened


def test_list_rows_are_the_server_model_with_the_same_wire_text(store):
    rows = store.status.find()
    assert RowRenderer().render(rows).decode() == LIST_TEXT
    items = json.loads(LIST_TEXT)["items"]
    assert [_text(ServerOut.from_status(r)) for r in rows] == \
        [json.dumps(i, ensure_ascii=False, separators=(",", ":")) for i in items]


def test_grid_body_is_the_grid_model_with_the_same_wire_text_and_etag(store):
    from agent.web.shapes import GridOut

    rotated = next(s.last_rotated_at for s in store.deeplink.all() if s.uuid == "pc-1")
    body = build_body(_Facade(store))
    assert body.body.decode() == GRID_TEXT.replace("ROT", repr(rotated))
    assert GridOut.model_validate_json(body.body).model_dump_json().encode() == body.body
    assert build_body(_Facade(store)).etag == body.etag  # same content, same ETag


def test_deeplink_event_and_intent_answers_keep_their_wire_text():
    assert _text(DeepLinkListOut.from_views(VIEWS)) == (
        '{"count":2,"stale":1,"duplicates":{"123":["pc-1","pc-2"]},"items":[{"uuid":"pc-1",'
        '"ip":"10.0.0.1","node_id":null,"device_id":"123","last_rotated_at":2.0,'
        '"last_boot_seen_at":null,"last_result":"confirmed","last_error":"","freshness":"stale",'
        '"duplicate_with":["pc-2"]},{"uuid":"pc-2","ip":"10.0.0.2","node_id":"n",'
        '"device_id":"123","last_rotated_at":null,"last_boot_seen_at":3.0,"last_result":"",'
        '"last_error":"x","freshness":"unknown","duplicate_with":["pc-1"]}]}')
    assert _text(EventPageOut.from_page(EventPage(items=EVENTS, next_before_id=3))) == (
        '{"items":[{"id":7,"ts":4.25,"actor":"alice","kind":"audit","action":"power",'
        '"server_uuid":"pc-1","result":"ok","verified":true,"detail":{"k":[1,"é"]}},'
        '{"id":8,"ts":5.0,"actor":"system","kind":"audit","action":"","server_uuid":null,'
        '"result":"","verified":null,"detail":{}}],"next_before_id":3}')
    intent = ServerIntent(server_id=1, power="on", power_at=1.5, actor="alice")
    assert _text(IntentOut.from_intent(intent)) == (
        '{"power":"on","power_at":1.5,"boot_device":null,"boot_persistent":false,'
        '"boot_uefi":false,"boot_at":null,"actor":"alice"}')


def test_dashboard_answers_are_the_api_shapes_plus_their_own_fields():
    detail_fields = list(ServerDetailOut.model_fields)
    assert list(UiServerDetailOut.model_fields) == [*detail_fields, "events", "now"]
    assert list(UiEventPageOut.model_fields) == [*EventPageOut.model_fields, "now"]
    assert UiServerDetailOut.model_fields["events"].annotation == list[EventOut]


def test_grid_rows_refuse_a_field_the_model_does_not_have():
    from pydantic import ValidationError

    from agent.web.shapes import GridOut

    row = json.loads(GRID_TEXT.replace("ROT", "2.0"))["servers"][1]
    with pytest.raises(ValidationError):
        GridOut.model_validate({"servers": [{**row, "ipmi_password": "x"}]})

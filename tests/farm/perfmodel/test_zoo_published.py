"""The Vitis AI Model Zoo table loader: mapping rows to zoo graphs and catalog targets, filtering, combining."""

from __future__ import annotations

from farm.perfmodel.calibration import row_target
from farm.perfmodel.params import held_out_error
from farm.perfmodel.published import map_zoo_row, read_zoo_csv, zoo_published_rows

HEADER = (
    "board,dpu,dpu_cores,clock_mhz,model,framework_model_name,ops_g,input,latency_ms,fps_st,fps_mt,source\n"
)
ROWS = """\
zcu102,DPUCZDX8G-B4096,3,281,resnet50,cf_resnet50_imagenet_224_224_7.7G,7.7,224x224,,80,180,"v1.4:x [a]"
zcu102,DPUCZDX8G-B4096,3,281,resnet50,tf2_resnet50_imagenet_224_224_7.76G,7.76,224x224,,125,,"v2.0:x [b]"
kv260,DPUCZDX8G-B4096F,1,300,inception_v1,cf_inceptionv1_imagenet_224_224_3.16G,3.16,224x224,,190,210,"v1.4:x"
u50,DPUCAHX8H,6,300,vgg16,tf_vgg16_imagenet_224_224_30.96G,30.96,224x224,,,160,"v1.3:x"
vck190,DPUCVDX8G-C32B3,1,300,mobilenet_v1_0.5,tf_mobilenetv1_0.5,0.15,160x160,,2600,6200,"v1.3:x [96 AIEs @ 1333 MHz (AIE clock) as stated]"
zcu104,DPUCZDX8G-B4096,2,300,resnet50_pruned0.5,cf_resnet50_pruned,3.8,224x224,,150,300,"v1.4:x"
zcu104,DPUCZDX8G-B4096,2,300,yolov3,dk_yolov3,65,416x416,,20,40,"v1.4:x"
u50,DPUCAHX8L,1,333,resnet50,cf_resnet50,7.7,224x224,,,300,"v1.4:x"
zcu102-rev04,DPUCZDX8G-B4096,3,287,resnet50,cf_resnet50,7.7,224x224,,60,120,"v1.0:x"
"""


def _rows(tmp_path):
    p = tmp_path / "zoo.csv"
    p.write_text("# comment\n" + HEADER + ROWS)
    return read_zoo_csv(p)


def test_rows_are_mapped_filtered_and_combined(tmp_path):
    raw = _rows(tmp_path)
    assert len(raw) == 9 and raw[0].release == "v1.4"
    rows, cov = zoo_published_rows(raw)
    assert cov["rows_total"] == 9 and cov["rows_unpruned"] == 8 and cov["rows_used"] == 5
    assert cov["configurations"] == 4 and cov["boards"] == ["kv260", "u50", "vck190", "zcu102"]
    assert cov["skipped"]["pruned"] == 1 and cov["skipped"]["no zoo graph"] == 1
    by = {(r.board, r.model): r for r in rows}
    zcu = by[("zcu102", "resnet50")]
    assert zcu.fps_st == 100.0  # geometric mean of 80 and 125 (two releases / frameworks)
    assert zcu.fps_mt == 180.0 and zcu.dpu_cores == 3 and zcu.source.startswith("2 rows")
    assert by[("kv260", "googlenet")].dpu == "DPUCZDX8G-B4096"  # B4096F is the B4096 array
    u50 = by[("u50", "vgg16")]
    assert (u50.dpu, u50.dpu_cores, u50.fps_st) == ("DPUCAHX8H-2x3E", 2, None)
    vck = by[("vck190", "mobilenet_v1_0.5")]
    assert vck.clock_mhz == 1333.0 and vck.input_hw == (160, 160)  # the AI Engine clock, from the source


def test_boards_outside_the_catalog_borrow_a_catalog_board(tmp_path):
    rows, _ = zoo_published_rows(_rows(tmp_path))
    zcu = next(r for r in rows if r.board == "zcu102")
    t = row_target(zcu)
    assert t.board == "zcu102" and t.cores == 3 and t.clock_mhz == 281 and t.capacity_mib == 4096
    assert t.bandwidth_gbps == row_target(next(r for r in rows if r.board == "kv260")).bandwidth_gbps


def test_unmodelled_rows_say_why(tmp_path):
    whys = {r.board + "/" + r.dpu: map_zoo_row(r)[1] for r in _rows(tmp_path)}
    assert "not modelled" in whys["u50/DPUCAHX8L"]
    assert "older AI SDK" in whys["zcu102-rev04/DPUCZDX8G-B4096"]


def test_held_out_error_per_board_or_overall():
    st, mt, basis = held_out_error("zcu104")
    assert basis == "zcu104" and 0 < st < 50 and 0 < mt < 50
    assert held_out_error("ultra96-v2")[2] == "ultra96-v1, as ultra96-v2"
    assert held_out_error("pynq-z2")[2] == "overall"

"""The farm dashboard's router: `farm dashboard` runs this file with Streamlit; one file per page in views/."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

# (file in views/, title, URL path, icon); the URL path plus query parameters is a shareable view.
# The first page is the default: Streamlit serves it at the app's root ("/"), not at its URL path.
PAGES = (
    ("overview.py", "Overview", "overview", ":material/dashboard:"),
    ("compare.py", "Compare", "compare", ":material/compare_arrows:"),
    ("run_detail.py", "Run detail", "run", ":material/timer:"),
    ("trends.py", "Trends", "trends", ":material/show_chart:"),
    ("alerts.py", "Alerts", "alerts", ":material/notifications:"),
    ("procurement.py", "Procurement", "procurement", ":material/shopping_cart:"),
    ("sweep_detail.py", "Sweep detail", "sweep", ":material/list_alt:"),
    ("fleet.py", "Fleet", "fleet", ":material/developer_board:"),
)

st.set_page_config(page_title="farm: FPGA vs GPU vs CPU", page_icon=":material/memory:", layout="wide")
# Less empty space above each page's title (Streamlit leaves 6rem), so a 1366x768 screen shows figures
# first: Compare's and the Overview's "which wins" are on the first screen.
st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 3rem; }</style>")
pages = [
    st.Page(HERE / "views" / file, title=title, url_path=path, icon=icon, default=(i == 0))
    for i, (file, title, path, icon) in enumerate(PAGES)
]
st.navigation(pages).run()

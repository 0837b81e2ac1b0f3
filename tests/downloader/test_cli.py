"""`flask fetch URLS.txt OUT_DIR -n N` runs the download stage alone and writes images, manifest and failures."""

from __future__ import annotations

import json


def test_fetch_command(make_app, image_server, tmp_path):
    urls = tmp_path / "urls.txt"
    lines = ["# a comment", image_server.url_for("cli0"), "", image_server.url_for("cli1", "png")]
    lines += [json.dumps({"image_url": f"{image_server.url}/fault/404", "page_url": "http://p/", "source": "bing"})]
    lines += [image_server.url_for("cli2"), image_server.url_for("cli3")]
    urls.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    app = make_app(ALLOW_PRIVATE_URLS=True)
    result = app.test_cli_runner().invoke(args=["fetch", str(urls), str(out), "-n", "3"])
    assert result.exit_code == 0, result.output
    assert "3 images in" in result.output
    assert sorted(p.name for p in (out / "images").iterdir()) == ["0001.jpg", "0002.png", "0003.jpg"]
    manifest = (out / "manifest.csv").read_text(encoding="utf-8").splitlines()
    assert len(manifest) == 4 and manifest[1].startswith("images/0001.jpg," + image_server.url_for("cli0"))
    assert (out / "failures.csv").read_text(encoding="utf-8").splitlines()[1:] == [
        f"{image_server.url}/fault/404,HTTP 404,"  # no class: one list, one dataset
    ]


def test_fetch_explains_a_shortfall_and_keeps_the_guard(make_app, image_server, tmp_path):
    urls = tmp_path / "urls.txt"
    urls.write_text(image_server.url_for("guarded") + "\n", encoding="utf-8")
    app = make_app(ALLOW_PRIVATE_URLS=False)
    result = app.test_cli_runner().invoke(args=["fetch", str(urls), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "found 0 of 1 images: 1 candidates, 1 blocked addresses" in result.output
    assert "loopback" in (tmp_path / "out" / "failures.csv").read_text(encoding="utf-8")


def test_fetch_refuses_unknown_formats(make_app, image_server, tmp_path):
    urls = tmp_path / "urls.txt"
    urls.write_text(image_server.url_for("fmt") + "\n", encoding="utf-8")
    result = make_app().test_cli_runner().invoke(args=["fetch", str(urls), str(tmp_path / "o"), "--formats", "bmp"])
    assert result.exit_code != 0 and "bmp" in result.output

"""The composer's files and emoji in a real browser, under the cabinet's own CSP:

- a file picked with the paperclip, an image pasted into the text and a file dropped on the thread
  show as chips (one removed again), go out with the reply as one message, reach the fake Telegram
  once (sendDocument with the caption, sendPhoto, sendPhoto) and the thread shows the image as a
  thumbnail through the authorised route;
- a file whose bytes are not what the browser says is refused by the server in place, its chip
  kept to be removed; files picked for one customer never follow the operator to another;
- the emoji panel by keyboard alone: the button opens it, arrows move, Enter inserts at the caret,
  Esc closes and gives the focus back; screenshots with the panel open, light and dark, desktop and
  phone, and axe on the composer with the panel open.
"""

from __future__ import annotations

import base64
import re
import struct
import zlib

import pytest
from playwright.async_api import expect
from sqlalchemy import select, update

from domain.enums import OperatorRole, OperatorStatus
from infra.models import Attachment, Message, Operator
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.test_workspace import _inbox, _writes
from tests.integration.conftest import engine_stack  # noqa: F401 - the engine fixture


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid PNG, big enough to be seen in a screenshot."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PASTED = _png(160, 90, (29, 92, 191))
DROPPED = _png(90, 90, (28, 118, 50))
PDF = b"%PDF-1.4\n% an invoice\n" + bytes(range(256))

# a File in the page: a ClipboardEvent or a drop carries it as the browser's own would
_FILE_TRANSFER = """([name, type, b64]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, {type}));
    return transfer;
}"""


async def test_a_picked_a_pasted_and_a_dropped_file_reach_telegram_once_with_a_thumbnail(
    sign_in, staff, live_api, clean_db, engine_stack, fake_telegram, screenshot
):
    anna = staff[OperatorRole.OPERATOR]
    async with clean_db() as db, db.begin():
        await db.execute(update(Operator).where(Operator.id == anna.id).values(status=OperatorStatus.ONLINE))
    shop = await _inbox(clean_db, "Магазин", escalation_minutes=60)
    page = await sign_in(OperatorRole.OPERATOR)
    await _writes(live_api.url, shop, 6001, "Пришлите, пожалуйста, счёт и фото", 1)
    rows = page.locator("#rows li.row")
    await expect(rows).to_have_count(1, timeout=20_000)
    await rows.first.locator("a").click()
    await page.wait_for_url(re.compile(r"/conversations/\d+"))
    conversation_id = int(page.url.rsplit("/", 1)[-1])
    chips = page.locator("#file-chips .file-chip")

    # the paperclip's dialog
    await page.set_input_files(
        "#composer-files", files=[{"name": "счёт.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await expect(chips).to_have_count(1)
    await expect(chips.first).to_contain_text("счёт.pdf")
    # Ctrl+V of a screenshot
    pasted = await page.evaluate_handle(_FILE_TRANSFER, ["image.png", "image/png", base64.b64encode(PASTED).decode()])
    await page.locator("#composer-text").evaluate(
        "(text, transfer) => text.dispatchEvent("
        "new ClipboardEvent('paste', {clipboardData: transfer, bubbles: true, cancelable: true}))",
        pasted,
    )
    await expect(chips).to_have_count(2)
    # a file dropped on the thread, and a file of a kind the channel is not sent (refused in place)
    dropped = await page.evaluate_handle(_FILE_TRANSFER, ["фото.png", "image/png", base64.b64encode(DROPPED).decode()])
    await page.locator("#messages").dispatch_event("drop", {"dataTransfer": dropped})
    await expect(chips).to_have_count(3)
    junk = await page.evaluate_handle(_FILE_TRANSFER, ["setup.exe", "application/x-msdownload", "TVo="])
    await page.locator("#messages").dispatch_event("drop", {"dataTransfer": junk})
    await expect(page.locator("#files-error")).to_contain_text("setup.exe не изображение")
    await expect(chips).to_have_count(3)
    await expect(chips.nth(1)).to_contain_text("image.png")
    await screenshot(page, "chips")
    # one removed and picked again: the chips and what is sent follow
    await chips.nth(2).get_by_role("button", name="Убрать фото.png").click()
    await expect(chips).to_have_count(2)
    await page.locator("#messages").dispatch_event("drop", {"dataTransfer": dropped})
    await expect(chips).to_have_count(3)

    await page.locator("#composer-text").fill("Счёт и фото во вложении")
    await page.locator("#send").click()
    await expect(chips).to_have_count(0)
    mine = page.locator("#messages .message[data-direction=out]")
    await expect(mine).to_have_count(1, timeout=20_000)
    await expect(mine.first).to_have_attribute("data-status", "sent", timeout=30_000)
    thumbs = mine.first.locator("img.thumb")
    await expect(thumbs).to_have_count(2)
    assert await thumbs.first.evaluate("img => img.decode().then(() => img.naturalWidth)") == 160
    await screenshot(page, "sent")

    sent = fake_telegram.sent_messages("6001")
    assert [(m.method, m.text) for m in sent] == [
        ("sendDocument", "Счёт и фото во вложении"),
        ("sendPhoto", None),
        ("sendPhoto", None),
    ]
    assert [(f.filename, f.content) for m in sent for f in m.files] == [
        ("счёт.pdf", PDF),
        ("image.png", PASTED),
        ("фото.png", DROPPED),
    ]
    async with clean_db() as db:
        outgoing = (
            await db.scalars(
                select(Message.id).where(Message.conversation_id == conversation_id, Message.direction == "out")
            )
        ).all()
        names = (await db.scalars(select(Attachment.file_name).where(Attachment.message_id.in_(outgoing)))).all()
    assert len(outgoing) == 1 and sorted(names) == sorted(["счёт.pdf", "image.png", "фото.png"])


@pytest.mark.parametrize(
    ("scheme", "viewport"),
    [("light", DESKTOP), ("dark", DESKTOP), ("dark", PHONE)],
    ids=["light-desktop", "dark-desktop", "dark-phone"],
)
async def test_emoji_by_keyboard_with_screens_and_axe(sign_in, conversations, screenshot, live_api, scheme, viewport):
    page = await sign_in(OperatorRole.OPERATOR, color_scheme=scheme, viewport=viewport)
    await page.goto(f"{live_api.url}/conversations/{conversations[0]}")
    text = page.locator("#composer-text")
    await text.fill("Спасибо за заказ ")
    toggle = page.locator("#emoji-toggle")
    panel = page.locator("#emoji-panel")
    await toggle.focus()
    await page.keyboard.press("Enter")
    await expect(panel).to_be_visible()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(page.get_by_role("button", name="Широкая улыбка")).to_be_focused()
    for key in ("ArrowRight", "ArrowRight", "ArrowDown", "ArrowLeft"):  # 0 -> 1 -> 2 -> 10 -> 9
        await page.keyboard.press(key)
    await expect(page.get_by_role("button", name="Слеза")).to_be_focused()
    await screenshot(page, f"emoji-{scheme}-{viewport['width']}")
    await assert_accessible(page)
    await page.keyboard.press("Enter")
    await expect(panel).to_be_hidden()
    await expect(text).to_be_focused()
    await expect(text).to_have_value("Спасибо за заказ 😢")
    # at the caret, not at the end
    await text.press("Home")
    await toggle.focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("button", name="Слеза")).to_be_focused()  # where the last pick was
    await page.keyboard.press("Home")
    await page.keyboard.press("Enter")
    await expect(text).to_have_value("😀Спасибо за заказ 😢")
    # Esc closes and gives the focus back to the button
    await toggle.focus()
    await page.keyboard.press("Enter")
    await expect(panel).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(toggle).to_be_focused()
    # and Tab out of it closes it too
    await page.keyboard.press("Enter")
    await expect(panel).to_be_visible()
    await page.keyboard.press("Shift+Tab")
    await expect(panel).to_be_hidden()


async def test_files_picked_for_one_customer_never_follow_to_another(sign_in, conversations, live_api):
    page = await sign_in(OperatorRole.OPERATOR)
    await page.goto(f"{live_api.url}/conversations/{conversations[1]}?tab=unassigned")
    await page.set_input_files(
        "#composer-files", files=[{"name": "счёт.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await expect(page.locator("#file-chips .file-chip")).to_have_count(1)
    await page.locator(f"#row-{conversations[2]} a.row-link").click()
    await expect(page.locator("#composer")).to_have_attribute("action", f"/conversations/{conversations[2]}/messages")
    await expect(page.locator("#file-chips .file-chip")).to_have_count(0)
    assert await page.locator("#composer-files").evaluate("input => input.files.length") == 0
    # a file added here is this conversation's alone
    await page.set_input_files(
        "#composer-files", files=[{"name": "акт.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await expect(page.locator("#file-chips .file-chip")).to_have_count(1)
    await expect(page.locator("#file-chips")).not_to_contain_text("счёт.pdf")


async def test_a_file_the_server_refuses_is_said_in_place_and_can_be_removed(
    sign_in, conversations, live_api, screenshot
):
    page = await sign_in(OperatorRole.OPERATOR, color_scheme="dark", viewport=PHONE)
    await page.goto(f"{live_api.url}/conversations/{conversations[0]}")
    # the browser's word says PNG; the bytes do not: only the server can tell
    fake = {"name": "фото.png", "mimeType": "image/png", "buffer": b"not a picture at all"}
    await page.set_input_files("#composer-files", files=[fake])
    chips = page.locator("#file-chips .file-chip")
    await expect(chips).to_have_count(1)
    await page.locator("#composer-text").fill("Фото заказа")
    await page.locator("#send").click()
    await expect(page.locator("#composer-error")).to_contain_text("фото.png не изображение (PNG, JPEG, GIF, WebP)")
    await expect(page.locator("#composer-text")).to_have_value("Фото заказа")
    await expect(chips).to_have_count(1)  # kept, to be removed
    await screenshot(page, "refused-dark-phone")
    await assert_accessible(page)
    await chips.first.get_by_role("button", name="Убрать фото.png").click()
    await page.locator("#send").click()
    await expect(page.locator("#composer-error")).to_have_count(0)
    await expect(page.locator("#composer-text")).to_have_value("")
    await expect(page.locator("#messages .message[data-direction=out]")).to_contain_text("Фото заказа")

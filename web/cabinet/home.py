"""The home page: the latest conversations the operator may see."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from services.conversations import recent_conversations
from web.deps import PageDep, SessionDep
from web.templating import render

router = APIRouter()


@router.get("/", response_class=HTMLResponse, name="home")
async def home(page: PageDep, db: SessionDep) -> HTMLResponse:
    conversations = await recent_conversations(db, page.operator)
    return render(page, "cabinet/home.html", {"conversations": conversations})

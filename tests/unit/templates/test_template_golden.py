"""Exactly what a customer receives for one step, in each language (change on purpose only)."""

from __future__ import annotations

import pytest

from qbo_collector import templates

GENTLE = {
    "en": (
        "Friendly reminder: invoice 1042 from Maple Street Bakery",
        "Hello O'Brien & Sons,\n"
        "\n"
        "Our records show that invoice 1042, due on Nov 8, 2026, still has $1,234.50 unpaid."
        " It may simply have slipped through; it happens to all of us.\n"
        "\n"
        "To pay, or if you have a question, simply reply to this email.\n"
        "\n"
        "If you have already paid, thank you, and please ignore this message.\n"
        "\n"
        "Thank you,\n"
        "Sam Patel\n"
        "Maple Street Bakery",
        "Maple Street Bakery: a friendly reminder that invoice 1042 ($1,234.50) was due on Nov 8, 2026.\n"
        "Questions? Reply to this text.\n"
        "Already paid? Thank you!",
    ),
    "fr": (
        "Petit rappel : facture 1042 (Atelier Dubois)",
        "Bonjour Marie Lefèvre,\n"
        "\n"
        "Sauf erreur de notre part, la facture 1042, échue le 8 novembre 2026, présente encore un solde de"
        " 1\u202f234,50\xa0€. Il s'agit peut-être d'un simple oubli ; cela arrive à tout le monde.\n"
        "\n"
        "Pour régler cette facture ou pour toute question, il vous suffit de répondre à ce message.\n"
        "\n"
        "Si vous avez déjà réglé cette facture, merci beaucoup, et veuillez ne pas tenir compte de ce message.\n"
        "\n"
        "Bien cordialement,\n"
        "Claire Dubois\n"
        "Atelier Dubois",
        "Atelier Dubois : petit rappel, la facture 1042 (1 234,50 €) est échue depuis le 8 novembre 2026.\n"
        "Une question ? Répondez à ce SMS.\n"
        "Déjà réglé ? Merci !",
    ),
}


@pytest.mark.parametrize("language", ["en", "fr"], ids=["gentle overdue reminder in English", "relance amiable en français"])
def test_gentle_overdue_reminder_word_for_word(language: str) -> None:
    message = templates.render(
        templates.default("reminder_overdue_gentle", language), templates.sample_context(language, minimal=True)
    )
    assert (message.subject, message.text, message.sms) == GENTLE[language]

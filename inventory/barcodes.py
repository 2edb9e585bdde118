"""GTIN check digits: EAN-13 (13 digits), UPC-A (12 digits) and EAN-8 (8 digits)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

GTIN_LENGTHS = (8, 12, 13)


def gtin_check_digit(body: str) -> int:
    """The check digit for `body` (the GTIN without its last digit).

    Weights alternate 3,1,3,... from the rightmost digit of the body, the same rule for every GTIN length.
    """
    total = sum(int(digit) * (3 if index % 2 == 0 else 1) for index, digit in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def is_valid_gtin(code: str) -> bool:
    return (
        code.isascii() and code.isdigit() and len(code) in GTIN_LENGTHS and gtin_check_digit(code[:-1]) == int(code[-1])
    )


def make_ean13(body12: str) -> str:
    """Complete a 12-digit body into a valid EAN-13."""
    if len(body12) != 12 or not body12.isdigit():
        raise ValueError("An EAN-13 body has exactly 12 digits.")
    return body12 + str(gtin_check_digit(body12))


def validate_gtin(value: str) -> None:
    """Django validator: a barcode must be an EAN-13, UPC-A or EAN-8 with a correct check digit."""
    if not value:
        return
    if not (value.isascii() and value.isdigit()) or len(value) not in GTIN_LENGTHS:
        raise ValidationError("A barcode has 8, 12 or 13 digits (EAN-8, UPC-A, EAN-13).", code="barcode_format")
    if not is_valid_gtin(value):
        raise ValidationError(
            "The barcode's check digit is wrong: expected %(expected)s.",
            code="barcode_checksum",
            params={"expected": gtin_check_digit(value[:-1])},
        )

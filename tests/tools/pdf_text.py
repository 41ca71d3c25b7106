"""Prints the text of a PDF as an independent reader (pypdf) extracts it, page by page.

Usage: pdf_text.py FILE. Each page starts with a line "--- page N ---".
"""
import sys

from pypdf import PdfReader

reader = PdfReader(sys.argv[1])
for n, page in enumerate(reader.pages, start=1):
    print(f"--- page {n} ---")
    print(page.extract_text())

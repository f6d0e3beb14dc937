"""Write examples/transcripts/valley_district_teacher_leadership_plan.pdf, the synthetic district
document of the examples, from the text below (fpdf2, a test dependency: `pip install -e '.[test]'`).

    python examples/district_plan.py
"""

from __future__ import annotations

from pathlib import Path

TITLE = "Valley Union High School District - Teacher Leadership Plan 2024-25"
NOTE = "SYNTHETIC EXAMPLE - invented for qcode's documentation and tests; not real research data."

PAGES = [
    [
        "1. Purpose",
        "This plan sets out how the Valley Union High School District will support teacher leaders at "
        "every high school in the 2024-25 school year. It was written by the district office with the "
        "Teacher Leader Council and approved by the Board of Trustees in June 2024.",
        "Teacher leaders are the bridge between the district's instructional priorities and the work of "
        "teachers in classrooms. The district commits to treating them as partners in decisions about "
        "curriculum, assessment and professional learning, not as messengers of decisions already made.",
    ],
    [
        "2. Structures",
        "The Teacher Leader Council meets on the first Tuesday of every month. Each high school sends two "
        "teacher leaders, and the Assistant Superintendent of Educational Services chairs the meeting. "
        "Agendas are set jointly and minutes are posted for all staff within one week.",
        "Each teacher leader receives one release period a day for coaching, planning with colleagues and "
        "facilitating professional learning communities. Focus schools, including Cottonwood High School, "
        "receive an additional instructional coach funded by the district.",
    ],
    [
        "3. Communication",
        "The district office sends a weekly bulletin to teacher leaders with upcoming decisions, timelines "
        "and the reasons behind them. Teacher leaders are asked to bring questions from their colleagues "
        "back to the Council, and the district will answer each question in writing within two weeks.",
        "4. Resources and constraints",
        "Because of the state budget, funds for substitute teachers are reduced by one third this year. "
        "Release days for teacher leaders outside their release period will therefore be limited to four "
        "per teacher leader, and the district will review this limit with the Council in January.",
    ],
]


def write(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(TITLE)
    pdf.set_creator("qcode examples")
    pdf.set_creation_date(__import__("datetime").datetime(2024, 6, 15))  # a fixed date: the same bytes each time
    for number, paragraphs in enumerate(PAGES, 1):
        pdf.add_page()
        pdf.set_font("helvetica", size=9)
        pdf.multi_cell(0, 5, NOTE)
        pdf.ln(4)
        if number == 1:
            pdf.set_font("helvetica", style="B", size=14)
            pdf.multi_cell(0, 7, TITLE)
            pdf.ln(4)
        pdf.set_font("helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph)
            pdf.ln(4)
    pdf.output(str(path))


if __name__ == "__main__":
    target = Path(__file__).parent / "transcripts" / "valley_district_teacher_leadership_plan.pdf"
    write(target)
    print(f"wrote {target}")

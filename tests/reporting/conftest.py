from tests.screening.conftest import gate, screening_app  # noqa: F401 (fixtures)

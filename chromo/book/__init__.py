"""The book's machinery: the main job (pipeline), checked reruns, what every notebook calls (report), the
figures (plots, diagrams), the paper's numbers and claims, and the chapters' tables. Nothing in the method
core imports from here."""

"""The training kit shared by every loop (teacher, pretraining, fine-tuning, distillation):
seeding, pure learning-rate schedules, and the checkpointer that resumes only its own run."""

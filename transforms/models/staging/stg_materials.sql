{{ stage_input('materials') }}

{{ stage_input('budget') }}

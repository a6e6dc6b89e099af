{{ stage_input('resources') }}

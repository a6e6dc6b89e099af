{{ stage_input('routings') }}

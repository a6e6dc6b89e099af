{{ stage_input('indicators') }}

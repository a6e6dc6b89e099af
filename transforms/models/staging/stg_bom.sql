{{ stage_input('bom') }}

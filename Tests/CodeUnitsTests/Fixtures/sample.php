<?php
use App\Models\User;

const VERSION = "1";

/**
 * A controller.
 */
class UserController extends Controller {
    public function show($id) {
        return User::find($id);
    }
}

function helper($x) {
    return strlen($x);
}
